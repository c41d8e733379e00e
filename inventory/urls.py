"""Staff screens of stock, mounted at /inventory/."""

from django.urls import path

from inventory import views, views_catalog, views_reconcile

app_name = "inventory"
urlpatterns = [
    path("", views.sku_list, name="sku-list"),
    path("skus/<int:pk>/", views.sku_detail, name="sku-detail"),
    path("skus/<int:pk>/receive/", views.sku_receive, name="sku-receive"),
    path("skus/<int:pk>/adjust/", views.sku_adjust, name="sku-adjust"),
    path("skus/<int:pk>/transfer/", views.sku_transfer, name="sku-transfer"),
    path("count/", views.count_start, name="count-start"),
    path("count/<slug:code>/", views.count_sheet, name="count-sheet"),
    path("count/<slug:code>/scan/", views.count_scan, name="count-scan"),
    path("count/<slug:code>/skus/<int:variant_pk>/", views.count_set, name="count-set"),
    path("count/<slug:code>/post/", views.count_post, name="count-post"),
    path("count/<slug:code>/discard/", views.count_discard, name="count-discard"),
    path("mismatches/", views.mismatch_list, name="mismatch-list"),
    path("mismatches/<int:pk>/<slug:action>/", views.mismatch_resolve, name="mismatch-resolve"),
    # Catalog import and export (inventory/views_catalog.py)
    path("catalog/import/", views_catalog.catalog_import, name="catalog-import"),
    path("catalog/import/<int:pk>/", views_catalog.catalog_import_detail, name="catalog-import-detail"),
    path("catalog/import/<int:pk>/status/", views_catalog.catalog_import_status, name="catalog-import-status"),
    path("catalog/import/<int:pk>/confirm/", views_catalog.catalog_import_confirm, name="catalog-import-confirm"),
    path("catalog/export.<str:fmt>", views_catalog.catalog_export, name="catalog-export"),
    path("catalog/exports/<int:pk>/", views_catalog.catalog_export_detail, name="catalog-export-detail"),
    path("catalog/exports/<int:pk>/status/", views_catalog.catalog_export_status, name="catalog-export-status"),
    path("catalog/exports/<int:pk>/download/", views_catalog.catalog_export_download, name="catalog-export-download"),
    # Stock sync of a channel and "Reconcile now" (inventory/views_reconcile.py)
    path("channels/<int:pk>/stock/", views_reconcile.channel_stock, name="channel-stock"),
    path("channels/<int:pk>/reconcile/", views_reconcile.channel_reconcile, name="channel-reconcile"),
]
