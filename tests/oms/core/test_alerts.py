"""The notification area: the bell's unread count in every staff page's header, the alert list with its filters,
mark read / mark all read over htmx, and channel scoping for a manager limited to one channel."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from oms.core.models import Alert, AlertReceipt
from oms.core.selectors import alerts_unread_count
from oms.core.services import alert_raise, alert_resolve

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def alerts(channel, other_channel):
    """One alert per channel, one of no channel, and one resolved."""
    return {
        "mine": alert_raise(
            kind="stock.mismatch",
            title="LAMP-BRASS differs on Main Shop",
            severity=Alert.Severity.WARNING,
            channel=channel,
            link="/inventory/mismatches/",
            dedupe_key="mm:main",
        ),
        "theirs": alert_raise(
            kind="stock.mismatch",
            title="SECRET-SKU differs on EU Shop",
            severity=Alert.Severity.CRITICAL,
            channel=other_channel,
            link="/inventory/mismatches/",
            dedupe_key="mm:eu",
        ),
        "global": alert_raise(
            kind="channel.down", title="Carrier API unreachable", severity=Alert.Severity.CRITICAL, link="javascript:x"
        ),
        "old": _resolved(channel),
    }


def _resolved(channel) -> Alert:
    alert = alert_raise(kind="order.hold", title="Order #1 held", channel=channel, dedupe_key="hold:1")
    alert_resolve(dedupe_key="hold:1")
    alert.refresh_from_db()
    return alert


def _titles(response) -> list[str]:
    return [a.title for a in response.context["page"].items]


def _bell(html: str) -> int | None:
    match = re.search(r'data-alert-count="(\d+)"', html)
    return int(match.group(1)) if match else None


# ---------------------------------------------------------------------------------------------------------
# Access and the bell


@pytest.mark.parametrize(
    ("role", "status"), [("admin_user", 200), ("manager", 200), ("warehouse_user", 200), ("packer", 403)]
)
def test_alert_list_per_role(client, request, alerts, role, status):
    client.force_login(request.getfixturevalue(role))

    assert client.get(reverse("alert-list")).status_code == status


def test_anonymous_is_sent_to_sign_in(client, alerts):
    response = client.get(reverse("alert-list"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_every_page_has_the_bell_which_loads_its_count(client, warehouse_user, alerts):
    client.force_login(warehouse_user)

    html = client.get(reverse("inventory:sku-list")).content.decode()

    assert 'id="alert-bell"' in html
    assert f'hx-get="{reverse("alert-bell")}"' in html
    assert 'hx-trigger="load, every 60s"' in html
    assert _bell(html) is None  # not counted with the page
    bell = client.get(reverse("alert-bell"), **HX)
    assert bell.status_code == 200
    assert _bell(bell.content.decode()) == 3  # every channel's open alerts and the global one; not the resolved one
    assert 'hx-trigger="every 60s"' in bell.content.decode()


def test_a_limited_managers_bell_counts_only_their_channels(client, manager, alerts):
    client.force_login(manager)

    html = client.get(reverse("alert-bell"), **HX).content.decode()

    assert _bell(html) == 2  # Main Shop's and the global one


def test_the_packer_has_no_bell(client, packer, alerts):
    client.force_login(packer)

    html = client.get(reverse("orders:packing")).content.decode()

    assert 'id="alert-bell"' not in html
    assert client.get(reverse("alert-bell"), **HX).status_code == 403


def test_the_count_is_one_cheap_query(manager, alerts, django_assert_max_num_queries):
    manager.has_perm("core.view_alerts")  # permissions are loaded once per request by the permission check

    with django_assert_max_num_queries(1):
        assert alerts_unread_count(manager) == 2


def test_pages_do_not_count_alerts(client, warehouse_user, alerts):
    client.force_login(warehouse_user)

    with CaptureQueriesContext(connection) as ctx:
        client.get(reverse("orders:order-list"))

    assert not any("core_alert" in q["sql"] for q in ctx.captured_queries)


# ---------------------------------------------------------------------------------------------------------
# The list: scoping and filters


def test_limited_manager_never_sees_another_channels_alerts(client, manager, alerts):
    client.force_login(manager)

    response = client.get(reverse("alert-list"), {"state": "all"})

    assert set(_titles(response)) == {"Carrier API unreachable", "Order #1 held", "LAMP-BRASS differs on Main Shop"}
    assert "SECRET-SKU" not in response.content.decode()


def test_another_channel_as_a_filter_is_a_form_error(client, manager, alerts, other_channel):
    client.force_login(manager)

    response = client.get(reverse("alert-list"), {"channel": other_channel.pk})

    assert b"Some filters were not applied" in response.content
    assert "SECRET-SKU" not in response.content.decode()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, {"LAMP-BRASS differs on Main Shop", "SECRET-SKU differs on EU Shop", "Carrier API unreachable"}),
        (
            {"state": "all"},
            {
                "LAMP-BRASS differs on Main Shop",
                "SECRET-SKU differs on EU Shop",
                "Carrier API unreachable",
                "Order #1 held",
            },
        ),
        ({"severity": "critical"}, {"SECRET-SKU differs on EU Shop", "Carrier API unreachable"}),
        ({"channel": "CHANNEL"}, {"LAMP-BRASS differs on Main Shop"}),
    ],
)
def test_filters(client, admin_user, alerts, channel, query, expected):
    client.force_login(admin_user)
    if query.get("channel") == "CHANNEL":
        query = {"channel": channel.pk}

    response = client.get(reverse("alert-list"), query)

    assert set(_titles(response)) == expected


def test_unread_filter_and_links(client, admin_user, alerts):
    client.force_login(admin_user)
    client.post(reverse("alert-read", args=[alerts["mine"].pk]), **HX)

    response = client.get(reverse("alert-list"), {"state": "unread"})

    assert set(_titles(response)) == {"SECRET-SKU differs on EU Shop", "Carrier API unreachable"}
    html = response.content.decode()
    assert 'href="/inventory/mismatches/"' in html  # where to act
    assert "javascript:" not in html  # an unsafe link is not made a link


# ---------------------------------------------------------------------------------------------------------
# Mark read


def test_mark_read_updates_the_row_and_the_bell(client, manager, alerts):
    client.force_login(manager)

    response = client.post(reverse("alert-read", args=[alerts["mine"].pk]), **HX)

    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="alert-{alerts["mine"].pk}"' in html
    assert "Mark read" not in html
    assert 'id="alert-bell"' in html
    assert 'hx-swap-oob="true"' in html
    assert _bell(html) == 1
    assert alerts_unread_count(manager) == 1
    assert AlertReceipt.objects.filter(user=manager, alert=alerts["mine"]).count() == 1


def test_mark_read_twice_is_harmless(client, manager, alerts):
    client.force_login(manager)

    client.post(reverse("alert-read", args=[alerts["mine"].pk]), **HX)
    client.post(reverse("alert-read", args=[alerts["mine"].pk]), **HX)

    assert AlertReceipt.objects.filter(user=manager).count() == 1


def test_read_is_per_user(client, manager, warehouse_user, alerts):
    client.force_login(manager)
    client.post(reverse("alert-read", args=[alerts["mine"].pk]), **HX)

    assert alerts_unread_count(warehouse_user) == 3


def test_marking_another_channels_alert_is_404(client, manager, alerts):
    client.force_login(manager)

    response = client.post(reverse("alert-read", args=[alerts["theirs"].pk]), **HX)

    assert response.status_code == 404
    assert not AlertReceipt.objects.exists()


def test_mark_all_read_marks_only_what_the_user_sees(client, manager, alerts):
    client.force_login(manager)

    response = client.post(reverse("alert-read-all"), {"state": "open"}, **HX)

    assert response.status_code == 200
    html = response.content.decode()
    assert "2 alerts marked read." in html
    assert _bell(html) == 0
    assert alerts_unread_count(manager) == 0
    assert set(AlertReceipt.objects.filter(user=manager).values_list("alert_id", flat=True)) == {
        alerts["mine"].pk,
        alerts["global"].pk,
    }


def test_raising_again_makes_it_unread(client, manager, alerts, channel):
    client.force_login(manager)
    client.post(reverse("alert-read-all"), **HX)

    alert_raise(kind="stock.mismatch", title="LAMP-BRASS differs again", channel=channel, dedupe_key="mm:main")

    assert alerts_unread_count(manager) == 1


def test_mark_read_without_htmx_redirects(client, manager, alerts):
    client.force_login(manager)

    response = client.post(reverse("alert-read", args=[alerts["mine"].pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("alert-list")


def test_packer_cannot_mark_alerts(client, packer, alerts):
    client.force_login(packer)

    assert client.post(reverse("alert-read-all"), **HX).status_code == 403
    assert not AlertReceipt.objects.exists()
