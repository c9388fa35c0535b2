from tests.syncing.fixtures import enqueued  # noqa: F401  (fixtures)
from tests.syncing.outbound_support import pushes  # noqa: F401
from tests.syncing.sandbox_fixtures import sandbox  # noqa: F401
