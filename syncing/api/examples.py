"""OpenAPI examples of the sync API (shown in /api/docs/)."""

from drf_spectacular.utils import OpenApiExample

from castiel.api.schema import error_example, error_response

INTEGRATION_ID = "0b6f6c1e-9a43-4c39-9a43-2f9b1c1d8e10"
RECORD_ID = "5d0f7a52-3d63-5b1e-8f43-0f6f1a2b9c7d"

SYNC_TASK = [
    OpenApiExample(
        "Contacts every 5 minutes",
        value={
            "integration": INTEGRATION_ID,
            "entity_type": "contacts",
            "interval_seconds": 300,
            "field_mapping": {
                "email": {"path": "properties.email", "transform": "email"},
                "name": "properties.name",
            },
            "dedup_strategy": "normalized_match",
            "dedup_config": {"rules": [{"rule": "email", "field": "email"}]},
            "conflict_strategy": "field_merge",
            "conflict_config": {"default": "manual"},
        },
        request_only=True,
    )
]

PREVIEW = [
    OpenApiExample("Two pages", value={"pages": 2}, request_only=True),
    OpenApiExample(
        "A preview",
        value={
            "task": "7e1c2b1a-1111-4a4a-8c8c-000000000001",
            "mode": "incremental",
            "since": "2025-01-31T08:00:00Z",
            "cursor": None,
            "pages": 1,
            "more_pages": True,
            "counts": {
                "fetched": 3,
                "created": 1,
                "updated": 1,
                "unchanged": 1,
                "deleted": 0,
                "duplicates": 0,
                "conflicts": 0,
                "errors": 0,
                "echoes": 0,
            },
            "items": [
                {
                    "action": "created",
                    "external_id": "104",
                    "record_id": RECORD_ID,
                    "fields": [],
                    "before": None,
                    "after": {"email": "ada@example.com", "name": "Ada"},
                },
                {
                    "action": "updated",
                    "external_id": "17",
                    "record_id": "6a1e0f1c-2222-5b1e-8f43-0f6f1a2b9c7d",
                    "fields": ["name"],
                    "before": {"email": "grace@example.com", "name": "Grace"},
                    "after": {"email": "grace@example.com", "name": "Grace Hopper"},
                },
            ],
            "truncated": False,
            "record_errors": [],
        },
        response_only=True,
    ),
]

RECORD_CREATE = [
    OpenApiExample(
        "A new contact",
        value={
            "integration": INTEGRATION_ID,
            "entity_type": "contacts",
            "data": {"first_name": "Ada", "email": "ada@example.com"},
        },
        request_only=True,
    )
]
RECORD_PATCH = [
    OpenApiExample(
        "Change one field, only if nobody else changed the record",
        value={"data": {"company": "Analytical Engines Ltd"}, "version": 3},
        request_only=True,
    )
]
RECORD_CONFLICT = error_response(
    "The record is at another version than `version`, changed while it was written, or is deleted.",
    error_example("version_mismatch", "the record is at version 4, not 3", status=409),
    error_example("record_deleted", "the record is deleted", status=409),
)

CONFLICT_RESOLVE = [
    OpenApiExample("Keep the remote version", value={"resolution": "remote"}, request_only=True),
    OpenApiExample(
        "Merged by hand",
        value={"resolution": "merged", "data": {"email": "ada@example.com", "name": "Ada L."}},
        request_only=True,
    ),
]

DEAD_LETTER_RESOLVED = error_response(
    "The dead letter was already replayed or discarded.",
    error_example("dead_letter_resolved", "this dead letter is already replayed", status=409),
)
DEAD_LETTER_BULK = [
    OpenApiExample(
        "Replay two",
        value={
            "ids": [
                "3f0c9a5e-4444-4b4b-9c9c-000000000001",
                "3f0c9a5e-4444-4b4b-9c9c-000000000002",
            ]
        },
        request_only=True,
    ),
    OpenApiExample(
        "One replayed, one skipped",
        value={
            "done": ["3f0c9a5e-4444-4b4b-9c9c-000000000001"],
            "skipped": {"3f0c9a5e-4444-4b4b-9c9c-000000000002": "no such dead letter"},
        },
        response_only=True,
    ),
]

PUSH_RULE = [
    OpenApiExample(
        "CRM contact changes update the helpdesk's users",
        value={
            "name": "CRM contacts → helpdesk users",
            "source_integration": INTEGRATION_ID,
            "source_entity_type": "contacts",
            "event_types": ["contacts.created", "contacts.updated"],
            "target_integration": "9c3d4e5f-5555-4c4c-8d8d-000000000002",
            "target_entity_type": "users",
            "field_mapping": {
                "email": {"path": "email", "transform": "email"},
                "name": "first_name",
                "organisation": "company",
            },
            "match_field": "email",
            "create_missing": True,
        },
        request_only=True,
    )
]

RECORD_CHANGES = [
    OpenApiExample(
        "Two changes",
        value={
            "results": [
                {
                    "id": 1041,
                    "action": "updated",
                    "record_id": RECORD_ID,
                    "integration": INTEGRATION_ID,
                    "entity_type": "contacts",
                    "external_id": "301",
                    "fields": ["email"],
                    "version": 4,
                    "at": "2025-01-31T08:00:03.120000Z",
                    "source": "run",
                    "source_id": "9b1f0c2e-5f1a-4c55-8c61-6b1d8d0e2a11",
                    "record": {
                        "id": RECORD_ID,
                        "integration": INTEGRATION_ID,
                        "entity_type": "contacts",
                        "external_id": "301",
                        "data": {"name": "Ada Lovelace", "email": "ada@example.com"},
                        "content_hash": "5e1c…",
                        "remote_updated_at": "2025-01-31T08:00:01Z",
                        "remote_version": "",
                        "local_updated_at": None,
                        "version": 4,
                        "deleted_at": None,
                        "synced_at": "2025-01-31T08:00:03.118000Z",
                        "created_at": "2025-01-02T10:00:00Z",
                    },
                },
                {
                    "id": 1042,
                    "action": "deleted",
                    "record_id": "0f3a2f8e-2b4e-5a55-9d7e-1c2b3a4d5e6f",
                    "integration": INTEGRATION_ID,
                    "entity_type": "contacts",
                    "external_id": "302",
                    "fields": [],
                    "version": 2,
                    "at": "2025-01-31T08:00:03.120000Z",
                    "source": "api",
                    "source_id": "4c0d2f7a-0b1e-4d2b-9a77-7b6e1f0c3d22",
                    "record": {
                        "id": "0f3a2f8e-2b4e-5a55-9d7e-1c2b3a4d5e6f",
                        "integration": INTEGRATION_ID,
                        "entity_type": "contacts",
                        "external_id": "302",
                        "deleted_at": "2025-01-31T08:00:02Z",
                    },
                },
            ],
            "next_cursor": "eyJ0IjoiZTQ…:1tVx9Q:Lm3…",
            "has_more": False,
        },
        response_only=True,
    )
]
