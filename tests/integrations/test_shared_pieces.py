"""Pieces every app shares, written once: dotted JSON paths and timestamp parsing.

Before the regrouping each existed twice and the copies had drifted: ``webhooks.jsonpath``
counted negative list indices from the end while ``integrations.adapters.pagination.dig`` did
not, and the webhook parsers' ``parse_time`` accepted fractional epoch text and never raised
while the adapters' ``parse_timestamp`` crashed on out-of-range numbers. These tests pin the
one behaviour each now has.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from integrations.adapters.mapping import FieldMapping
from integrations.adapters.normalize import parse_timestamp
from integrations.adapters.pagination import dig
from integrations.jsonpath import get_path, valid_path
from integrations.webhook_events import Delivery, get_parser

DOC = {"items": [{"id": 1}, {"id": 2}, {"id": 3}], "-1": "key", "n": None, "s": "text"}


# --------------------------------------------------------------------------- dotted paths


@pytest.mark.parametrize(
    "path, expected",
    [
        ("items.0.id", 1),
        ("items.2.id", 3),
        # Negative indices count from the end, as in Python.
        ("items.-1.id", 3),
        ("items.-3.id", 1),
        # Outside the list either way: absent.
        ("items.3.id", None),
        ("items.-4.id", None),
        # On an object a part is always a key, "-1" included.
        ("-1", "key"),
        # Only ASCII digits are indices ("²".isdigit() is True, but it is not an index).
        ("items.²", None),
        ("items.\u0661", None),  # Arabic-Indic one
        ("items.+1", None),
        ("items.1.5", None),
        ("s.0", None),
        ("", DOC),
        ("missing.deeper", None),
    ],
)
def test_one_path_reader_everywhere(path, expected):
    assert get_path(DOC, path) == expected
    # The adapters' dig is the same reader (mappings, REST options, dedup rules).
    assert dig(DOC, path) == expected


def test_absent_and_null_are_told_apart_only_by_the_default():
    assert get_path(DOC, "n", default="absent") is None
    assert get_path(DOC, "nope", default="absent") == "absent"
    assert get_path(DOC, "n.deeper", default="absent") == "absent"


def test_a_field_mapping_can_take_the_last_item():
    mapping = FieldMapping({"latest": "events.-1.kind", "first": "events.0.kind"})
    record = {"events": [{"kind": "created"}, {"kind": "updated"}]}
    assert mapping.apply(record) == {"latest": "updated", "first": "created"}


def test_the_generic_webhook_parser_takes_negative_indices_too():
    parse = get_parser("generic")
    body = {"type": "contact.merged", "ids": ["c_1", "c_2"]}  # merged into the last one
    [event] = parse(Delivery(body=body, headers={}, config={"external_id": "ids.-1"}))
    assert event.external_id == "c_2"


@pytest.mark.parametrize("path", ["a", "a.b", "a.-1", "a.0.b"])
def test_valid_paths(path):
    assert valid_path(path)


@pytest.mark.parametrize("path", ["", ".a", "a.", "a..b"])
def test_invalid_paths(path):
    assert not valid_path(path)


# ----------------------------------------------------------------------------- timestamps

MOMENT = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2023-11-14T22:13:20Z", MOMENT),
        ("2023-11-14T22:13:20+00:00", MOMENT),
        ("2023-11-14T22:13:20", MOMENT),  # naive means UTC
        ("2023-11-14T23:13:20+01:00", MOMENT),
        (1700000000, MOMENT),
        (1700000000.0, MOMENT),
        (1700000000000, MOMENT),  # milliseconds (HubSpot occurredAt)
        ("1700000000", MOMENT),
        ("1700000000000", MOMENT),
        ("  1700000000  ", MOMENT),
        # Fractional epoch text (Slack's event_ts) — the adapters' copy refused it.
        ("1700000000.5", MOMENT.replace(microsecond=500000)),
        (-5, datetime(1969, 12, 31, 23, 59, 55, tzinfo=UTC)),
    ],
)
def test_timestamps_that_are_timestamps(value, expected):
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        True,
        False,
        "soon",
        "2023-13-01",
        "-5",  # signed text is not an epoch
        "1e9",
        # Out of range: the adapters' copy raised OverflowError/ValueError here.
        1e20,
        10**400,
        "9" * 400,
        "9" * 400 + ".5",
        float("nan"),
        float("inf"),
        # Non-ASCII digits: "²" made both copies raise; Arabic-Indic and full-width numerals
        # were read as epochs by the adapters' copy.
        "²",
        "\u0661\u0667" + "\u0660" * 8,  # Arabic-Indic 1700000000
        "\uff11\uff17" + "\uff10" * 8,  # full-width 1700000000
        [1700000000],
        {"at": 1700000000},
    ],
)
def test_everything_else_is_not_a_timestamp_and_never_raises(value):
    assert parse_timestamp(value) is None
