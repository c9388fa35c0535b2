"""Guessing: admin logins lock out after repeated failures (django-axes, visible in the admin),
and failed API-key authentications are answered 429 with Retry-After per client address
once past a bound — a valid key is never slowed."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

LOGIN = "/admin/login/?next=/admin/"


def _login(client, password, address="203.0.113.7"):
    return client.post(
        LOGIN, {"username": "ops", "password": password}, REMOTE_ADDR=address, follow=False
    )


@pytest.fixture
def operator(db):
    return User.objects.create_superuser("ops", "ops@example.com", "correct horse battery")


def test_admin_login_locks_out_after_repeated_failures(client, operator, settings):
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        assert _login(client, "wrong").status_code == 200  # the form again, with an error
    assert _login(client, "wrong").status_code == 429
    # Locked: even the right password is refused from that address…
    assert _login(client, "correct horse battery").status_code == 429
    # …while another address still logs in.
    assert _login(client, "correct horse battery", address="198.51.100.9").status_code == 302


def test_a_lockout_is_visible_and_removable_in_the_admin(client, operator, settings):
    from axes.models import AccessAttempt

    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, "wrong")
    attempt = AccessAttempt.objects.get()
    assert attempt.ip_address == "203.0.113.7"
    assert attempt.failures_since_start == settings.AXES_FAILURE_LIMIT
    staff = User.objects.create_superuser("other", "other@example.com", "pw-other-123")
    client.force_login(staff)
    page = client.get("/admin/axes/accessattempt/")
    assert page.status_code == 200
    assert "203.0.113.7" in page.content.decode()
    assert "correct horse battery" not in page.content.decode()
    detail = client.get(f"/admin/axes/accessattempt/{attempt.pk}/change/")
    assert detail.status_code == 200
    assert "wrong" not in detail.content.decode()  # the password tried is never kept


def test_a_successful_login_resets_the_failures(client, operator, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(client, "wrong")
    assert _login(client, "correct horse battery").status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, "wrong").status_code == 200


# -- API keys ------------------------------------------------------------------------------------


def _call(client, key, address="203.0.113.7"):
    return client.get("/api/v1/tenant/", HTTP_AUTHORIZATION=f"Bearer {key}", REMOTE_ADDR=address)


def test_failed_api_keys_are_answered_429_with_retry_after_past_the_bound(client, settings):
    settings.CASTIEL_API_AUTH_FAILURE_LIMIT = 5
    settings.CASTIEL_API_AUTH_FAILURE_WINDOW = 120
    for n in range(5):
        assert _call(client, f"cst_abcd1234_guess{n}").status_code == 401
    throttled = _call(client, "cst_abcd1234_guess-more")
    assert throttled.status_code == 429
    assert 0 < int(throttled["Retry-After"]) <= 120
    body = throttled.json()
    assert body["code"] == "throttled"
    assert body["details"]["retry_after"] == int(throttled["Retry-After"])
    assert "guess" not in throttled.content.decode()
    # Another address is not affected.
    assert _call(client, "cst_abcd1234_guess", address="198.51.100.9").status_code == 401


def test_a_valid_key_is_never_slowed(client, tenant, settings):
    from castiel.tenancy import services as tenancy

    settings.CASTIEL_API_AUTH_FAILURE_LIMIT = 3
    _key, raw = tenancy.api_key_create(tenant=tenant)
    for n in range(10):
        _call(client, f"cst_abcd1234_guess{n}")
    assert _call(client, "cst_abcd1234_nope").status_code == 429
    # The same address, past the bound: the right key still goes through, every time.
    for _ in range(10):
        assert _call(client, raw).status_code == 200


def test_successes_do_not_count_toward_the_bound(client, tenant, settings):
    from castiel.tenancy import services as tenancy

    settings.CASTIEL_API_AUTH_FAILURE_LIMIT = 3
    _key, raw = tenancy.api_key_create(tenant=tenant)
    for _ in range(20):
        assert _call(client, raw).status_code == 200
    assert _call(client, "cst_abcd1234_nope").status_code == 401
