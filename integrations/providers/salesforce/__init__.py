"""Salesforce (REST API): Contact and Account.

Facts an adapter relies on (sources in fixtures/SOURCES.md):

- Every call goes to the org's own ``instance_url`` (returned by the token endpoint), never
  to the login host: ``{instance_url}/services/data/{api_version}/...``.
- Paging: ``GET /query?q=<SOQL>`` answers ``{"totalSize", "done", "nextRecordsUrl",
  "records"}``; while ``done`` is false, GET ``nextRecordsUrl`` (a path on the instance,
  query locator ``01g...-<offset>``). Batches are 200-2,000 records
  (``Sforce-Query-Options: batchSize=N``). Incremental: ``WHERE SystemModstamp > <ISO 8601>
  ORDER BY SystemModstamp``; deleted rows need ``/queryAll`` and ``IsDeleted``. Each record
  carries ``attributes.type``/``attributes.url``.
- Writes: create ``POST /sobjects/{type}/`` -> 201 ``{"id", "errors", "success"}``; update
  ``PATCH /sobjects/{type}/{id}`` -> 204, delete -> 204 (no body). Idempotent create: upsert
  ``PATCH /sobjects/{type}/{ExternalIdField}/{value}`` -> 201 ``created: true`` or (API >= 46.0)
  200 ``created: false`` (204 without a body on older versions); several matches -> 300 with
  a list of record URLs.
- Echo suppression: compare ``LastModifiedById`` with the integration user's id (the last
  segment of the token response's ``id`` URL).
- Limits: ``Sforce-Limit-Info: api-usage=<used>/<allocation>`` on responses; exhausted ->
  403 ``REQUEST_LIMIT_EXCEEDED``.
- Errors: a JSON array of ``{"message", "errorCode"[, "fields"]}``; an expired or revoked
  access token -> 401 ``INVALID_SESSION_ID`` (refresh once, retry once). Token endpoint
  errors: ``{"error": "invalid_grant", "error_description": ...}``.

The adapter (``adapter.py``) checks ``instance_url`` (https, the org's host, not the login
host) and the other config values; see its docstring for queries, upserts and errors.
``limits.py`` reads ``Sforce-Limit-Info``.
"""

from integrations.providers.base import OAuthSpec, ProviderInfo

from .limits import read as read_limits

PROVIDER = ProviderInfo(
    slug="salesforce",
    name="Salesforce",
    auth_types=("oauth2_authorization_code", "oauth2_jwt_bearer", "oauth2_client_credentials"),
    api_base="{instance_url}/services/data/{api_version}",
    entity_types=("Contact", "Account"),
    display_fields={"Contact": ("FirstName LastName", "Email"), "Account": ("Name", "Website")},
    docs_url="https://developer.salesforce.com/docs/platform/api-rest/guide",
    oauth=OAuthSpec(
        # The login host follows the integration's login_url: test.salesforce.com for
        # sandboxes, or the org's My Domain URL; JWT bearer uses the same token URL.
        authorize_url="https://login.salesforce.com/services/oauth2/authorize",
        token_url="https://login.salesforce.com/services/oauth2/token",  # noqa: S106  (an endpoint URL, not a password)
        scopes=("api", "refresh_token"),
        pkce=True,
        scope_delimiter=" ",
        revoke_url="https://login.salesforce.com/services/oauth2/revoke",
    ),
    rate_limit={
        # 100,000 is the Enterprise Edition base allocation; it grows with licences
        # (Developer Edition: 15,000), so operators raise it per integration.
        "limit": 100_000,
        "window": 86_400,
        "scope": "org",
        "source": "Salesforce: rolling 24-hour API request allocation per org, shared by "
        "every app and user (Enterprise Edition base 100,000 plus per-licence additions)",
        "headers": ("Sforce-Limit-Info",),
    },
    limit_headers=read_limits,
    # No native webhooks: change data capture and platform events are streamed (Pub/Sub
    # API), and outbound messages are SOAP. Changes arrive by polling SystemModstamp.
    webhook_scheme=None,
    test_connection="GET /limits",
    required_config=("instance_url",),
    config_from_token=f"{__name__}.tokens.config_from_token",
    optional_config={
        "login_url": "https://login.salesforce.com",
        "api_version": "v66.0",
        # API name of an External ID field (e.g. Castiel_Id__c) for idempotent creates by
        # upsert; empty means plain create.
        "external_id_field": "",
        # The user Castiel connects as (005..., the last segment of the token response's
        # "id" URL): versions it last modified are echoes of our own writes.
        "integration_user_id": "",
    },
    # Relative to this package, so a copied folder uses its own copy of the adapter.
    adapter=f"{__name__}.adapter.SalesforceAdapter",
)
