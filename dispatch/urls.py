"""Staff screens of dispatch, mounted at /dispatch/."""

from django.urls import path

from dispatch import views, views_attention

app_name = "dispatch"
urlpatterns = [
    path("pack/", views.pack_start, name="pack"),
    path("pack/station/", views.pack_station, name="pack-station"),
    path("pack/next/", views.pack_next, name="pack-next"),
    path("pack/<int:pk>/", views.pack_session, name="pack-session"),
    path("pack/<int:pk>/scan/", views.pack_scan, name="pack-scan"),
    path("pack/<int:pk>/gate/", views.pack_gate, name="pack-gate"),
    path("pack/<int:pk>/packed/", views.pack_packed, name="pack-packed"),
    path("pack/<int:pk>/rates/", views.pack_rates, name="pack-rates"),
    path("pack/<int:pk>/override/", views.pack_override, name="pack-override"),
    path("pack/<int:pk>/release/", views.pack_release, name="pack-release"),
    path("queue/", views.queue, name="queue"),
    path("attention/", views_attention.needs_attention_list, name="needs-attention"),
    path("batches/", views.batch_list, name="batch-list"),
    path("batches/new/", views.batch_create, name="batch-create"),
    path("batches/<int:pk>/", views.batch_detail, name="batch-detail"),
    path("batches/<int:pk>/pick-list.pdf", views.batch_pick_list, name="batch-pick-list"),
    path("batches/<int:pk>/pack/", views.batch_pack, name="batch-pack"),
    path("batches/<int:pk>/close/", views.batch_close, name="batch-close"),
    path("shipments/<int:pk>/", views.shipment_detail, name="shipment-detail"),
    path("shipments/<int:pk>/status/", views.shipment_status, name="shipment-status"),
    path("shipments/<int:pk>/rebook/", views.shipment_rebook, name="shipment-rebook"),
    path("shipments/<int:pk>/rates/", views.shipment_rates, name="shipment-rates"),
    path("shipments/<int:pk>/void/", views.shipment_void, name="shipment-void"),
    path("shipments/<int:pk>/settle/", views.shipment_settle, name="shipment-settle"),
    path("shipments/<int:pk>/reprint/", views.shipment_reprint, name="shipment-reprint"),
    path("parcels/<int:pk>/label/", views.parcel_label, name="parcel-label"),
    path("documents/<int:pk>/", views.document_download, name="document-download"),
    path("manifests/", views.manifest_list, name="manifest-list"),
    path("manifests/new/", views.manifest_create, name="manifest-create"),
]
