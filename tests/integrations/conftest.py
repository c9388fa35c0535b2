from tests.syncing.fixtures import json_server  # noqa: F401
