"""A group of push results in two statements on PostgreSQL (the ORM store's ``mark_pushed_many``).

One pushed change used to cost the record two round trips: the lookup of a twin stored by a
pull under the external id a create was just given, and the conditional ``UPDATE`` of
``OrmRecordStore.mark_pushed``. A provider batch of a hundred items made that two hundred
round trips, about half of a push worker's turn (docs/benchmarks.md, ``outbound_batch``).
Here a group goes as one twin lookup (a ``VALUES`` list probing the indexes per created
record, ``FOR UPDATE``) and one ``UPDATE … FROM (VALUES …)`` with the same SET expressions
per row as the single statement — each CASE sees the row as it was before the UPDATE, under
its row lock.

A group is split into rounds that hold each record, and each external id a create was given,
at most once: an ``UPDATE … FROM`` applies one source row per target row, and the second of
two creates answered with one external id must find the first as its twin, as it does one
push at a time.
"""

from __future__ import annotations

from django.db import connection

from syncing.models import Record
from syncing.records import history
from syncing.records.stores.base import RecordRef


def mark_pushed_many(pushes: list[dict]) -> list[bool]:
    taken: dict[int, bool] = {}
    for round_ in _rounds(pushes):
        _remove_twins([pushes[i] for i in round_ if pushes[i].get("external_id")])
        taken.update(_update([(i, pushes[i]) for i in round_]))
    return [taken.get(i, False) for i in range(len(pushes))]


def _rounds(pushes: list[dict]) -> list[list[int]]:
    rounds: list[list[int]] = []
    current: list[int] = []
    records: set = set()
    external_ids: set = set()
    for i, push in enumerate(pushes):
        external_id = push.get("external_id") or None
        if push["record_id"] in records or (external_id and external_id in external_ids):
            rounds.append(current)
            current, records, external_ids = [], set(), set()
        current.append(i)
        records.add(push["record_id"])
        if external_id:
            external_ids.add(external_id)
    if current:
        rounds.append(current)
    return rounds


def _columns() -> tuple[str, dict[str, str]]:
    meta = Record._meta
    quote = connection.ops.quote_name
    return quote(meta.db_table), {f.name: quote(f.column) for f in meta.concrete_fields}


def _remove_twins(creates: list[dict]) -> None:
    """A pull may have stored the provider's copy of a created record while the create's answer
    was outstanding: that duplicate goes (and its removal is in the history), ours keeps its
    id — what ``mark_pushed`` does for one record."""
    if not creates:
        return
    table, col = _columns()
    rows = ", ".join(["(%s::uuid, %s::uuid, %s::varchar)"] * len(creates))
    params: list = []
    for push in creates:
        params += [push["tenant_id"], push["record_id"], push["external_id"]]
    # One index probe per created record, each LATERAL: its scope by primary key, then the
    # twin by the (integration, entity type, external id) unique index. Left to itself the
    # planner hash-joined the VALUES list against a sequential scan of the whole table (no
    # index starts with the tenant and external id), ~65 ms a group in bench outbound_batch;
    # OFFSET 0 keeps each subquery from being flattened back into that join. The twin is not
    # matched on its tenant: its integration is the created record's, whose tenant ``p`` was
    # matched on, and a tenant condition let the planner pick the (tenant, entity type) index
    # on a table without statistics yet — a scan of the tenant's records per created record.
    statement = (
        "SELECT r.* "  # noqa: S608 - our columns; values are params
        f"FROM (VALUES {rows}) AS v (tenant_id, id, external_id) "
        f"CROSS JOIN LATERAL (SELECT p.{col['integration']} AS integration_id, "
        f"p.{col['entity_type']} AS entity_type FROM {table} AS p "
        f"WHERE p.{col['id']} = v.id AND p.{col['tenant']} = v.tenant_id OFFSET 0) AS p "
        f"CROSS JOIN LATERAL (SELECT r.{col['id']}, r.{col['tenant']}, r.{col['integration']}, "
        f"r.{col['entity_type']}, r.{col['external_id']}, r.{col['version']} FROM {table} AS r "
        f"WHERE r.{col['integration']} = p.integration_id "
        f"AND r.{col['entity_type']} = p.entity_type AND r.{col['external_id']} = v.external_id "
        f"AND r.{col['id']} <> v.id "
        f"FOR UPDATE OF r) AS r ORDER BY 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        gone = [RecordRef(*row) for row in cursor.fetchall()]
    if gone:
        Record.objects.filter(id__in=[ref.id for ref in gone]).delete()
        history.removed(gone, source=history.Source.PUSH)


def _update(group: list[tuple[int, dict]]) -> dict[int, bool]:
    """The group's results in one UPDATE; per position whether the data became ``remote``."""
    table, col = _columns()
    meta = Record._meta

    def prep(name, value):
        return meta.get_field(name).get_db_prep_value(value, connection)

    row = (
        "(%s::uuid, %s::uuid, %s::varchar, %s::jsonb, %s::boolean, %s::varchar, %s::varchar, "
        "%s::timestamptz, %s::varchar)"
    )
    params: list = []
    for _, push in group:
        remote = push.get("remote")
        params += [
            push["tenant_id"],
            push["record_id"],
            push["pushed_hash"],
            prep("data", remote) if remote is not None else None,
            remote is not None and not push.get("keep_local", False),
            push.get("local_hash"),
            push.get("remote_version"),
            prep("remote_updated_at", push.get("remote_updated_at")),
            push.get("external_id") or None,
        ]
    # keep_local: only the base moves; the data keeps edits this push did not send. Otherwise
    # the provider's copy becomes the data unless a local edit came in since the push read it.
    takes = "v.takes AND (v.local_hash IS NULL OR t.{h} = v.local_hash)".format(
        h=col["content_hash"]
    )
    sets = ", ".join(
        [
            f"{col['last_pushed_hash']} = v.pushed_hash",
            f"{col['version']} = t.{col['version']} + 1",
            f"{col['base_data']} = COALESCE(v.remote, t.{col['base_data']})",
            f"{col['base_hash']} = CASE WHEN v.remote IS NULL THEN t.{col['base_hash']} "
            "ELSE v.pushed_hash END",
            f"{col['data']} = CASE WHEN {takes} THEN v.remote ELSE t.{col['data']} END",
            f"{col['content_hash']} = CASE WHEN {takes} THEN v.pushed_hash "
            f"ELSE t.{col['content_hash']} END",
            f"{col['remote_version']} = COALESCE(v.remote_version, t.{col['remote_version']})",
            f"{col['remote_updated_at']} = "
            f"COALESCE(v.remote_updated_at, t.{col['remote_updated_at']})",
            f"{col['external_id']} = COALESCE(v.external_id, t.{col['external_id']})",
        ]
    )
    statement = (
        f"UPDATE {table} AS t SET {sets} "  # noqa: S608 - our columns; values are params
        f"FROM (VALUES {', '.join([row] * len(group))}) AS v (tenant_id, id, pushed_hash, "
        "remote, takes, local_hash, remote_version, remote_updated_at, external_id) "
        f"WHERE t.{col['tenant']} = v.tenant_id AND t.{col['id']} = v.id "
        f"RETURNING t.{col['id']}, t.{col['content_hash']}, v.takes"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        stored = {str(pk): takes and hash_ for pk, hash_, takes in cursor.fetchall()}
    return {
        i: stored.get(str(push["record_id"])) == push["pushed_hash"]
        for i, push in group
        if str(push["record_id"]) in stored
    }
