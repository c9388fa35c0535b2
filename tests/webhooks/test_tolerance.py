"""The signed-timestamp tolerance is a bounded number of seconds; it cannot switch the check off.

``timestamp_tolerance`` is 1-3,600 seconds (``webhooks.models.TOLERANCE_RANGE``), refused
outside that range by the model (so the services, the API and the admin), and a stored value
outside it — a row written before the rule — fails closed instead of accepting any age.
"""

from __future__ import annotations

import importlib
import json
import time

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from tests.webhooks.support import stripe_header
from tests.webhooks.test_api import admin_form
from webhooks import lookup
from webhooks.models import TOLERANCE_RANGE, WebhookRegistration
from webhooks.schemes import VerificationFailed
from webhooks.schemes.base import check_tolerance

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

SECRET = "whsec_" + "a" * 32
BODY = json.dumps(
    {"id": "evt_1", "type": "customer.created", "data": {"object": {"id": "cus_1"}}}
).encode()


def test_the_range_is_one_second_to_one_hour():
    assert TOLERANCE_RANGE == (1, 3600)


@pytest.mark.parametrize("tolerance", [0, 3601])
def test_a_tolerance_outside_the_range_is_refused(make_reg, tolerance):
    with pytest.raises(ValidationError) as info:
        make_reg(scheme="stripe", secret=SECRET, timestamp_tolerance=tolerance)
    assert "timestamp_tolerance" in info.value.message_dict


@pytest.mark.parametrize("tolerance", [1, 3600])
def test_the_ends_of_the_range_are_accepted(make_reg, tolerance):
    registration = make_reg(scheme="stripe", secret=SECRET, timestamp_tolerance=tolerance)
    assert registration.timestamp_tolerance == tolerance


def test_the_api_refuses_zero_with_a_field_error(api, tenant):
    response = api.post(
        "/api/v1/webhook-registrations/",
        {"name": "no freshness", "scheme": "stripe", "secret": SECRET, "timestamp_tolerance": 0},
        format="json",
    )
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] and "timestamp_tolerance" in json.dumps(body["details"])


def test_the_admin_refuses_zero(client, tenant):
    user = get_user_model().objects.create_superuser("admin", "a@example.com", "pw-12345-long")
    client.force_login(user)
    response = client.post(
        "/admin/webhooks/webhookregistration/add/", admin_form(tenant, timestamp_tolerance="0")
    )
    assert response.status_code == 200  # the form again, with the error
    assert "timestamp_tolerance" in response.context["adminform"].form.errors
    assert not WebhookRegistration.objects.exists()


def test_zero_in_the_check_itself_fails_closed():
    """Whatever reaches the check, 0 never means "any age"."""
    with pytest.raises(VerificationFailed) as info:
        check_tolerance(time.time() - 86400, now=time.time(), tolerance=0)
    assert info.value.reason == "timestamp_outside_tolerance"


def test_a_stored_zero_does_not_accept_a_day_old_delivery(client, make_reg):
    registration = make_reg(scheme="stripe", secret=SECRET)
    WebhookRegistration.objects.filter(pk=registration.pk).update(timestamp_tolerance=0)
    lookup.invalidate(registration.pk)

    old = stripe_header(SECRET, BODY, int(time.time()) - 86400)
    response = client.post(
        f"/webhooks/{registration.pk}/",
        data=BODY,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=old,
    )

    assert (response.status_code, response.json()["code"]) == (401, "timestamp_outside_tolerance")


def test_the_migration_moves_stored_values_into_the_range(make_reg):
    low = make_reg(scheme="stripe", secret=SECRET)
    high = make_reg(scheme="stripe", secret=SECRET)
    kept = make_reg(scheme="stripe", secret=SECRET, timestamp_tolerance=42)
    WebhookRegistration.objects.filter(pk=low.pk).update(timestamp_tolerance=0)
    WebhookRegistration.objects.filter(pk=high.pk).update(timestamp_tolerance=86400)

    migration = importlib.import_module("webhooks.migrations.0003_timestamp_tolerance_range")
    migration.into_range(apps, None)

    values = dict(WebhookRegistration.objects.values_list("pk", "timestamp_tolerance"))
    assert (values[low.pk], values[high.pk], values[kept.pk]) == (300, 3600, 42)
