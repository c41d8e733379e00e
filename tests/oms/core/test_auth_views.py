"""Sign in, sign out, the role-aware home page and the navigation each role sees."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import staff_user

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests-only"


def _nav_keys(response) -> list[str]:
    return [item.key for item in response.context["nav_items"]]


def test_login_page_renders(client):
    response = client.get(reverse("login"))

    assert response.status_code == 200
    assert b'name="username"' in response.content


def test_login_with_right_password_lands_on_the_role_home(client, manager):
    response = client.post(reverse("login"), {"username": manager.username, "password": PASSWORD}, follow=True)

    assert response.redirect_chain[-1][0] == reverse("reporting:dashboard")
    assert response.status_code == 200


def test_login_with_wrong_password_shows_an_error(client, manager):
    response = client.post(reverse("login"), {"username": manager.username, "password": "nope"})

    assert response.status_code == 200
    assert b"correct username and password" in response.content
    assert "_auth_user_id" not in client.session


def test_login_ignores_an_offsite_next(client, manager):
    response = client.post(
        reverse("login") + "?next=https://evil.example.com/",
        {"username": manager.username, "password": PASSWORD, "next": "https://evil.example.com/"},
    )

    assert response.status_code == 302
    assert "evil.example.com" not in response["Location"]


def test_logout_is_a_post_and_ends_the_session(client, manager):
    client.force_login(manager)

    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))

    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert "_auth_user_id" not in client.session


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for url in (
        reverse("home"),
        reverse("orders:order-list"),
        reverse("reporting:dashboard"),
        reverse("orders:packing"),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_anonymous_htmx_request_is_told_to_sign_in_and_come_back(client, channel):
    response = client.post(
        reverse("orders:order-hold", args=[1]),
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://testserver/orders/1/?tab=x",
    )

    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("login") + "?next=%2Forders%2F1%2F%3Ftab%3Dx"


@pytest.mark.parametrize(
    ("fixture", "landing"),
    [
        ("admin_user", "reporting:dashboard"),
        ("manager", "reporting:dashboard"),
        ("warehouse_user", "reporting:dashboard"),
        ("packer", "orders:packing"),
    ],
)
def test_home_redirects_by_role(client, request, fixture, landing):
    client.force_login(request.getfixturevalue(fixture))

    response = client.get(reverse("home"))

    assert response.status_code == 302
    assert response["Location"] == reverse(landing)


def test_home_for_a_user_without_a_role_is_forbidden(client, db):
    from django.contrib.auth.models import User

    nobody = User.objects.create_user("nobody", password=PASSWORD)
    client.force_login(nobody)

    response = client.get(reverse("home"))

    assert response.status_code == 403
    assert b"have access" in response.content


@pytest.mark.parametrize(
    ("fixture", "visible", "hidden"),
    [
        (
            "admin_user",
            [
                "dashboard",
                "orders",
                "customers",
                "channels",
                "packing",
                "dispatch",
                "stock",
                "catalog",
                "alerts",
                "admin",
            ],
            [],
        ),
        (
            "manager",
            ["dashboard", "orders", "customers", "channels", "packing", "dispatch", "stock", "catalog", "alerts"],
            ["admin"],
        ),
        (
            "warehouse_user",
            ["dashboard", "orders", "packing", "dispatch", "stock", "alerts"],
            ["customers", "channels", "catalog", "admin"],
        ),
        (
            "packer",
            ["packing"],
            ["dashboard", "orders", "customers", "channels", "dispatch", "stock", "catalog", "alerts", "admin"],
        ),
    ],
)
def test_navigation_shows_only_what_the_role_may_open(client, request, fixture, visible, hidden):
    user = request.getfixturevalue(fixture)
    client.force_login(user)

    response = client.get(reverse("orders:packing") if fixture == "packer" else reverse("reporting:dashboard"))

    keys = _nav_keys(response)
    assert keys == visible
    for key in hidden:
        assert f'data-nav="{key}"' not in response.content.decode()


def test_navigation_shows_the_user_and_role_and_a_logout_button(client, warehouse_user):
    client.force_login(warehouse_user)

    response = client.get(reverse("reporting:dashboard"))

    html = response.content.decode()
    assert warehouse_user.username in html
    assert response.context["nav_role"] == "Warehouse"
    assert f'action="{reverse("logout")}"' in html


def test_navigation_marks_the_current_screen(client, admin_user):
    client.force_login(admin_user)

    response = client.get(reverse("orders:customer-list"))

    active = [item.key for item in response.context["nav_items"] if item.active]
    assert active == ["customers"]


@pytest.mark.parametrize(
    ("url_name", "active"),
    [
        ("dispatch:pack", "packing"),
        ("orders:packing", "packing"),
        ("dispatch:queue", "dispatch"),
        ("dispatch:batch-list", "dispatch"),
        ("dispatch:needs-attention", "dispatch"),
    ],
)
def test_packing_leads_to_the_packing_screen_and_dispatch_to_the_live_queue(client, warehouse_user, url_name, active):
    client.force_login(warehouse_user)

    response = client.get(reverse(url_name))

    assert response.status_code == 200
    items = {item.key: item for item in response.context["nav_items"]}
    assert items["packing"].url == reverse("dispatch:pack")
    assert items["dispatch"].url == reverse("dispatch:queue")
    assert [key for key, item in items.items() if item.active] == [active]


def test_packing_without_the_packing_permission_is_the_overview(client, db):
    from django.contrib.auth.models import Permission, User

    viewer = User.objects.create_user("overview-only", password=PASSWORD)
    viewer.user_permissions.add(Permission.objects.get(codename="view_packing_queue"))
    client.force_login(viewer)

    response = client.get(reverse("orders:packing"))

    [item] = response.context["nav_items"]
    assert (item.key, item.url, item.active) == ("packing", reverse("orders:packing"), True)
    assert "data-start-packing" not in response.content.decode()


def test_friendly_404_page(client, admin_user):
    client.force_login(admin_user)

    response = client.get("/orders/999999/")

    assert response.status_code == 404
    assert b"couldn&#x27;t find" in response.content or b"couldn't find" in response.content


def test_superuser_without_group_is_labelled(client, db):
    user = staff_user("Admin", username="root-like")
    user.is_superuser = True
    user.save()
    client.force_login(user)

    response = client.get(reverse("reporting:dashboard"))

    assert response.context["nav_role"] == "Admin"
