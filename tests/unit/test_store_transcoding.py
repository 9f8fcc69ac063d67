"""The store's orjson encoder writes what eventsourcing's JSONTranscoder writes (decoded, the
same values), and hands everything it cannot vouch for to the standard encoder."""

from __future__ import annotations

import enum
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.shared import Meta
from domain.store import MetaAsDict
from domain.transcoding import OrjsonTranscoder
from infra.bootstrap import Container
from tests.factories import meta


def pair() -> tuple[JSONTranscoder, OrjsonTranscoder]:
    standard, fast = JSONTranscoder(), OrjsonTranscoder()
    for t in (standard, fast):
        for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), MetaAsDict()):
            t.register(transcoding)
    return standard, fast


STANDARD, FAST = pair()

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.uuids(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), None])),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=5), inner, max_size=4),
    ),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN (the standard encoder writes NaN; both read it back)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=8), values, max_size=6))
def test_every_state_decodes_to_the_same_values_as_the_standard_encoding(
    state: dict[str, Any],
) -> None:
    assert same(STANDARD.decode(FAST.encode(state)), STANDARD.decode(STANDARD.encode(state)))


def test_an_event_state_is_byte_for_byte_the_standard_one() -> None:
    state = {
        "timestamp": datetime(2026, 11, 22, 9, 0, 0, 123456, tzinfo=UTC),
        "originator_topic": "domain.conversations.aggregates:ArchivedMessage",
        "meta": meta(),
        "msgid": "m-1",
        "seq": 7,
        "recipients": ["wmA", "张三"],
        "message_id": uuid4(),
        "amount": Decimal("12.30"),
        "note": 'quote " backslash \\ newline \n tab \t',
    }
    assert FAST.encode(state) == STANDARD.encode(state)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 1, 1, tzinfo=UTC),  # no microseconds: none written
        datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(1000, 1, 1, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC),  # before year 1000: the long way
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 1, 1, 8, tzinfo=timezone(timedelta(hours=8))),
        datetime(2026, 1, 1, 8),
    ],
)
def test_datetimes_are_written_as_isoformat_writes_them(moment: datetime) -> None:
    assert FAST.encode({"at": moment}) == STANDARD.encode({"at": moment})


class Colour(enum.StrEnum):
    RED = "red"


class Unregistered:
    pass


@pytest.mark.parametrize(
    "state",
    [
        {"x": math.nan},
        {"x": math.inf},
        {"x": 2**64},
        {"x": -(2**63) - 1},
        {"x": Colour.RED},  # a str subclass: the standard encoder writes its value
        {1: "int key"},
        {"x": {"y": [1, {2.5: "float key"}]}},
    ],
)
def test_what_orjson_would_write_differently_goes_to_the_standard_encoder(
    state: dict[Any, Any],
) -> None:
    assert FAST.encode(state) == STANDARD.encode(state)


def test_an_unregistered_type_fails_as_the_standard_encoder_fails() -> None:
    with pytest.raises(TranscodingNotRegisteredError):
        FAST.encode({"x": Unregistered()})
    with pytest.raises(UnicodeEncodeError):
        FAST.encode({"x": "lone surrogate \ud800"})


def test_the_applications_use_it_and_read_what_they_wrote(container: Container) -> None:
    app = container.conversations
    assert isinstance(app.mapper.transcoder, OrjsonTranscoder)
    envelope = meta()
    app.record_access(
        reader="user:a", role="admin", purpose="审计抽查", query={}, message_ids=[], meta=envelope
    )
    (record,) = container.read_log(container.head() - 1, 1)
    stored = app.recorder.select_events(UUID(record.originator_id))[0]
    decoded = app.mapper.to_domain_event(stored)
    assert decoded.meta == Meta(**envelope.as_dict())  # type: ignore[attr-defined]
    assert json.loads(stored.state)["meta"]["_type_"] == "meta"
