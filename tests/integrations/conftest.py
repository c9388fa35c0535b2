from tests.syncing.fixtures import enqueued, json_server  # noqa: F401  (fixtures)
from tests.syncing.outbound_support import pushes  # noqa: F401  (fixture)
