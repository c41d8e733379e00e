"""Staff screens of the order domain, mounted at /orders/."""

from django.urls import path

from oms.orders import views

app_name = "orders"
urlpatterns = [
    path("", views.order_list, name="order-list"),
    path("export.csv", views.order_export, name="order-export"),
    path("<int:pk>/", views.order_detail, name="order-detail"),
    path("<int:pk>/hold/", views.order_hold, name="order-hold"),
    path("<int:pk>/release/", views.order_release, name="order-release"),
    path("<int:pk>/cancel/", views.order_cancel, name="order-cancel"),
    path("customers/", views.customer_list, name="customer-list"),
    path("customers/<int:pk>/", views.customer_detail, name="customer-detail"),
    path("customers/<int:pk>/notes/", views.customer_note_add, name="customer-note-add"),
    path("channels/", views.channel_list, name="channel-list"),
    path("channels/<int:pk>/sync/", views.channel_sync, name="channel-sync"),
    path("channels/events/<int:pk>/retry/", views.inbound_event_retry, name="inbound-event-retry"),
    path("packing/", views.packing, name="packing"),
]
