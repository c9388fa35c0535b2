"""Settings profiles, checked in fresh processes (settings are read once at start-up)."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.processes import REPO, manage


def run_manage(tmp_path, *args, **env):
    base = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "CASTIEL_DATA_DIR": str(tmp_path / "data"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    return subprocess.run(
        manage(*args), cwd=REPO, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


PRODUCTION = {
    "CASTIEL_PROFILE": "production",
    "SECRET_KEY": "x" * 64 + "production-grade-secret-key-for-tests-only",
    "ALLOWED_HOSTS": "castiel.example.com",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "CASTIEL_SECRET_KEYS": "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg=",
    "CASTIEL_METRICS_TOKEN": "metrics-token-for-tests-only",
}


def test_production_without_secret_key_fails_with_one_clear_line(tmp_path):
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = run_manage(tmp_path, "check", **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "SECRET_KEY must be set when CASTIEL_PROFILE=production" in lines[0]


def test_unknown_profile_is_a_clear_error(tmp_path):
    result = run_manage(tmp_path, "check", CASTIEL_PROFILE="staging")
    assert result.returncode == 2
    assert "CASTIEL_PROFILE must be 'embedded' or 'production'" in result.stderr


def test_production_passes_the_deploy_checks(tmp_path, postgres):
    # A migrated database (the test database): the deploy checks include the schedules
    # that migrate creates.
    from tests.support.processes import database_url

    env = {**PRODUCTION, "DATABASE_URL": database_url()}
    result = run_manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_without_a_metrics_token_fails_the_deploy_checks(tmp_path, postgres):
    """Without the token /metrics is open to anyone and /healthz details to no scraper."""
    from tests.support.processes import database_url

    env = {k: v for k, v in PRODUCTION.items() if k != "CASTIEL_METRICS_TOKEN"}
    env["DATABASE_URL"] = database_url()
    result = run_manage(tmp_path, "check", "--deploy", **env)
    assert result.returncode != 0
    assert "castiel.E003" in result.stderr
    assert "CASTIEL_METRICS_TOKEN" in result.stderr
    # Only a deploy check: ordinary commands (migrate, qcluster) still start.
    assert run_manage(tmp_path, "check", **env).returncode == 0


@pytest.mark.parametrize("debug", ["true", "1", "on"])
def test_production_refuses_to_start_with_debug_on(tmp_path, debug):
    result = run_manage(tmp_path, "check", DEBUG=debug, **PRODUCTION)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DEBUG must be off when CASTIEL_PROFILE=production" in lines[0]


def test_embedded_profile_needs_nothing_set(tmp_path):
    result = run_manage(tmp_path, "check")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "secret_key").exists()


def test_retry_not_above_timeout_is_refused_at_start_up(tmp_path):
    result = run_manage(tmp_path, "check", Q_TIMEOUT="300", Q_RETRY="300")
    assert result.returncode != 0
    assert "castiel.E001" in result.stderr
    assert "retry (300s) must be greater than timeout (300s)" in result.stderr


@pytest.mark.parametrize("broker", ["redis", "orm"])
def test_production_splits_work_into_four_clusters(tmp_path, broker):
    code = (
        "from django.conf import settings as s; from castiel.queue import cluster_for;"
        "print(sorted(s.Q_CLUSTER['ALT_CLUSTERS']), cluster_for('webhooks'),"
        " 'django_redis' in s.Q_CLUSTER, 'orm' in s.Q_CLUSTER)"
    )
    result = run_manage(tmp_path, "shell", "-c", code, CASTIEL_BROKER=broker, **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == [
        "['inbound',",
        "'maintenance',",
        "'outbound',",
        "'webhooks']",
        "webhooks",
        str(broker == "redis"),
        str(broker == "orm"),
    ]


def test_split_clusters_of_a_named_site_have_queues_of_their_own(tmp_path):
    """The cluster name is the Redis list: a second site must not share "webhooks"."""
    code = (
        "from django.conf import settings as s; from castiel.queue import cluster_for;"
        "print(sorted(s.Q_CLUSTER['ALT_CLUSTERS']), cluster_for('webhooks'))"
    )
    result = run_manage(tmp_path, "shell", "-c", code, CASTIEL_QUEUE_NAME="site2", **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == [
        "['site2-inbound',",
        "'site2-maintenance',",
        "'site2-outbound',",
        "'site2-webhooks']",
        "site2-webhooks",
    ]


def test_an_unknown_key_vault_credential_is_a_clear_error(tmp_path):
    result = run_manage(tmp_path, "check", AZURE_KEYVAULT_CREDENTIAL="password")
    assert result.returncode == 2
    assert "AZURE_KEYVAULT_CREDENTIAL must be one of default, environment" in result.stderr
    assert "not 'password'" in result.stderr


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_the_data_folder_and_the_sqlite_file_are_owner_only(tmp_path, umask):
    """They hold the secret key, the generated Fernet keys and every credential row."""
    import os
    import stat

    previous = os.umask(umask)  # inherited by the process started below
    try:
        result = run_manage(tmp_path, "migrate", "--no-input")
    finally:
        os.umask(previous)
    assert result.returncode == 0, result.stderr
    data = tmp_path / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    database = data / "castiel.sqlite3"
    assert database.stat().st_size > 0  # the real database, migrated
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    for sibling in data.glob("castiel.sqlite3-*"):  # WAL and shared-memory files
        assert stat.S_IMODE(sibling.stat().st_mode) & 0o077 == 0, sibling
