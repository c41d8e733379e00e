"""Sign in, sign out, the role-aware home page and the notification area (alerts)."""

from django.urls import path

from oms.core import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("alerts/", views.alert_list, name="alert-list"),
    path("alerts/bell/", views.alert_bell, name="alert-bell"),
    path("alerts/read-all/", views.alert_read_all, name="alert-read-all"),
    path("alerts/<int:pk>/read/", views.alert_read, name="alert-read"),
]
