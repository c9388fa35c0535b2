from tests.syncing.fixtures import (  # noqa: F401  (fixtures)
    cosmos_endpoint,
    cosmos_outage_store,
    cosmos_proxy,
    cosmos_store,
    enqueued,
    fast_retries,
    json_server,
    record_store,
    stored_records,
)
from tests.syncing.outbound_support import pushes  # noqa: F401
from tests.syncing.sandbox_fixtures import sandbox  # noqa: F401
