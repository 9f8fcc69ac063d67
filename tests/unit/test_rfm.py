"""RFM bands: every score is 1-5, more recent / more often / more spent never scores lower,
and the bands' edges fall where the model says."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.customers.rfm import DEFAULT_BANDS, RfmBands
from domain.shared import InvalidInput

days = st.integers(min_value=0, max_value=5_000)
counts = st.integers(min_value=1, max_value=500)
fen = st.integers(min_value=-10_000, max_value=10**9)  # refunds can exceed a kept freight


@given(days, counts, fen)
def test_scores_are_one_to_five(d: int, n: int, ltv: int) -> None:
    assert set(DEFAULT_BANDS.score(d, n, ltv).values()) <= {1, 2, 3, 4, 5}


@given(days, days, counts, counts, fen, fen)
def test_more_recent_more_often_more_spent_never_scores_lower(
    d1: int, d2: int, n1: int, n2: int, m1: int, m2: int
) -> None:
    a = DEFAULT_BANDS.score(min(d1, d2), max(n1, n2), max(m1, m2))
    b = DEFAULT_BANDS.score(max(d1, d2), min(n1, n2), min(m1, m2))
    assert a["r"] >= b["r"] and a["f"] >= b["f"] and a["m"] >= b["m"]


@pytest.mark.parametrize(
    ("d", "n", "ltv", "expected"),
    [
        (30, 1, 49_999, {"r": 5, "f": 1, "m": 1}),  # the edges belong to the better score
        (31, 2, 50_000, {"r": 4, "f": 2, "m": 2}),
        (365, 9, 999_999, {"r": 2, "f": 4, "m": 4}),
        (366, 10, 1_000_000, {"r": 1, "f": 5, "m": 5}),
    ],
)
def test_band_edges(d: int, n: int, ltv: int, expected: dict[str, int]) -> None:
    assert DEFAULT_BANDS.score(d, n, ltv) == expected


@given(
    st.lists(st.integers(min_value=0, max_value=10**6), min_size=4, max_size=4, unique=True),
)
def test_any_ascending_bands_parse_and_round_trip(values: list[int]) -> None:
    ordered = sorted(values)
    bands = RfmBands.parse(
        {"recency_days": ordered, "frequency": [v + 1 for v in ordered], "monetary": ordered}
    )
    assert RfmBands.parse(bands.as_dict()) == bands


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"frequency": [2, 3, 5, 10], "monetary": [1, 2, 3, 4]}, "recency_days"),
        (
            {"recency_days": [1, 2, 3], "frequency": [2, 3, 5, 10], "monetary": [1, 2, 3, 4]},
            "recency_days",
        ),
        (
            {"recency_days": [1, 2, 3, 4], "frequency": [0, 3, 5, 10], "monetary": [1, 2, 3, 4]},
            "frequency",
        ),
        (
            {"recency_days": [1, 2, 2, 4], "frequency": [2, 3, 5, 10], "monetary": [1, 2, 3, 4]},
            "recency_days",
        ),
        (
            {"recency_days": [1, 2, 3, 4], "frequency": [2, 3, 5, 10], "monetary": [1, 2, 3, True]},
            "monetary",
        ),
    ],
)
def test_bad_bands_name_the_band(raw: dict[str, list[int]], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        RfmBands.parse(raw)
    assert refused.value.field == field
