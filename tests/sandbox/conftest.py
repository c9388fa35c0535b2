from tests.syncing.sandbox_fixtures import sandbox  # noqa: F401
