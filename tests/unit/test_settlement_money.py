"""Money in settlement: the one rounding rule, splits that always add up, and the parsers that
keep floats and nonsense out of rule sets (CONVENTIONS.md, "Money and numbers")."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.money import MAX_FEN, parse_fen, parse_rate, round_fen, scale, split, yuan
from domain.shared import InvalidInput

amounts = st.integers(min_value=-MAX_FEN, max_value=MAX_FEN)
party_ids = st.text(alphabet="abcdefghij-_0123456789", min_size=1, max_size=6)
weight_values = st.one_of(
    st.integers(min_value=0, max_value=1000),
    st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False, allow_infinity=False).map(
        lambda d: d.normalize() if d else Decimal(0)
    ),
)
weights_maps = st.dictionaries(party_ids, weight_values, min_size=1, max_size=8).filter(
    lambda w: sum(Decimal(v) for v in w.values()) > 0
)


def exact_share(amount: int, weights: dict[str, Decimal | int], party: str) -> Fraction:
    total = sum((Fraction(Decimal(w)) for w in weights.values()), Fraction(0))
    return Fraction(amount) * Fraction(Decimal(weights[party])) / total


# --- split ----------------------------------------------------------------------------------


@given(amounts, weights_maps)
def test_split_always_sums_exactly_to_the_amount(amount, weights):
    shares = split(amount, weights)
    assert set(shares) == set(weights)
    assert all(isinstance(s, int) for s in shares.values())
    assert sum(shares.values()) == amount


@given(amounts, weights_maps)
def test_every_share_is_within_one_fen_of_its_exact_share(amount, weights):
    shares = split(amount, weights)
    for party, share in shares.items():
        assert abs(share - exact_share(amount, weights, party)) < 1


@given(amounts, weights_maps)
def test_a_share_is_its_exact_share_rounded_down_or_up(amount, weights):
    shares = split(abs(amount), weights)
    for party, share in shares.items():
        exact = exact_share(abs(amount), weights, party)
        assert share in (exact.__floor__(), exact.__ceil__())


@given(amounts, weights_maps, st.randoms(use_true_random=False))
def test_split_does_not_depend_on_the_order_of_the_weights(amount, weights, rnd):
    items = list(weights.items())
    rnd.shuffle(items)
    assert split(amount, dict(items)) == split(amount, weights)
    assert split(amount, dict(reversed(items))) == split(amount, weights)


@given(amounts, weights_maps)
def test_a_negative_amount_splits_like_its_positive_negated(amount, weights):
    """A clawback takes back from each party exactly what the sale gave it."""
    positive = split(abs(amount), weights)
    negative = split(-abs(amount), weights)
    assert negative == {party: -share for party, share in positive.items()}


@given(st.lists(party_ids, min_size=1, max_size=8, unique=True), st.data())
def test_ties_go_to_the_smaller_party_id(parties, data):
    left = data.draw(st.integers(min_value=0, max_value=len(parties) - 1))
    base = data.draw(st.integers(min_value=0, max_value=10_000))
    sign = data.draw(st.sampled_from([1, -1]))
    amount = sign * (base * len(parties) + left)
    shares = split(amount, dict.fromkeys(parties, 1))
    lucky = set(sorted(parties)[:left])
    for party in parties:
        assert shares[party] == sign * (base + (1 if party in lucky else 0))


def test_split_examples():
    assert split(100, {"b": 1, "a": 1, "c": 1}) == {"a": 34, "b": 33, "c": 33}
    assert split(-100, {"b": 1, "a": 1, "c": 1}) == {"a": -34, "b": -33, "c": -33}
    # largest remainder beats the smaller id: 6.6 / 3.3 / 0.1
    assert split(10, {"a": 1, "b": 33, "c": 66}) == {"a": 0, "b": 3, "c": 7}
    assert split(1001, {"payee": 6, "brand": 3, "ip": 1}) == {"payee": 601, "brand": 300, "ip": 100}
    assert split(0, {"a": 1, "b": 2}) == {"a": 0, "b": 0}
    assert split(5, {"a": 0, "b": 1}) == {"a": 0, "b": 5}


@pytest.mark.parametrize("weights", [{}, {"a": 0}, {"a": 0, "b": 0}, {"a": -1, "b": 2}])
def test_split_refuses_no_parties_or_bad_weights(weights):
    with pytest.raises(InvalidInput) as e:
        split(100, weights)
    assert e.value.field == "parties"


# --- rounding -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fen"),
    [
        ("0.5", 1),
        ("-0.5", -1),
        ("1.5", 2),
        ("2.5", 3),
        ("-2.5", -3),
        ("0.49", 0),
        ("-0.49", 0),
        ("0.51", 1),
        ("1499.5", 1500),
        ("-1499.5", -1500),
        ("7", 7),
        ("0", 0),
    ],
)
def test_round_fen_is_half_away_from_zero(value, fen):
    assert round_fen(Decimal(value)) == fen


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_round_fen_of_a_half_goes_away_from_zero(n):
    half = Decimal(n) + Decimal("0.5")  # n + 0.5
    assert round_fen(half) == (n + 1 if half > 0 else n)
    assert round_fen(-half) == -round_fen(half)


@given(
    st.decimals(
        min_value=-(10**12), max_value=10**12, places=6, allow_nan=False, allow_infinity=False
    )
)
def test_round_fen_is_symmetric_and_within_half_a_fen(value):
    fen = round_fen(value)
    assert round_fen(-value) == -fen
    assert abs(fen - value) <= Decimal("0.5")


@given(amounts)
def test_scale_by_one_is_the_amount(amount):
    assert scale(amount, Decimal(1)) == amount
    assert scale(amount, Decimal("1.000")) == amount
    assert scale(amount, Decimal(0)) == 0


def test_scale_examples():
    assert scale(999, Decimal("1.15")) == 1149  # 1148.85
    assert scale(1001, Decimal("1.5")) == 1502  # 1501.5, half up
    assert scale(-1001, Decimal("1.5")) == -1502  # half away from zero
    assert scale(10000, Decimal("0.05")) == 500
    assert scale(2050, Decimal("0.03")) == 62  # 61.5


@pytest.mark.parametrize(
    ("fen", "text"),
    [
        (8000, "80.00"),
        (-150, "-1.50"),
        (0, "0.00"),
        (5, "0.05"),
        (-5, "-0.05"),
        (123456, "1234.56"),
    ],
)
def test_yuan(fen, text):
    assert yuan(fen) == text


# --- parsing rates and amounts --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "rate"),
    [("1.2", Decimal("1.2")), ("0.05", Decimal("0.05")), (1, Decimal(1)), ("0", Decimal(0))],
)
def test_parse_rate_reads_decimal_strings_and_whole_numbers(value, rate):
    parsed = parse_rate(value, "x.rate")
    assert parsed == rate
    assert isinstance(parsed, Decimal)


@pytest.mark.parametrize(
    "value",
    [
        1.2,
        0.5,
        1.0,
        True,
        False,
        None,
        [],
        {},
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-Infinity",
        "-0.1",
        -1,
        "1001",
        "",
        "one",
        "1,2",
    ],
)
def test_parse_rate_rejects_floats_booleans_nan_negative_and_junk(value):
    with pytest.raises(InvalidInput) as e:
        parse_rate(value, "definition.components[0].rate")
    assert e.value.field == "definition.components[0].rate"


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_parse_rate_rejects_every_float(value):
    with pytest.raises(InvalidInput):
        parse_rate(value, "r")


def test_parse_rate_minimum():
    assert parse_rate("1", "c", minimum=Decimal(1)) == 1
    with pytest.raises(InvalidInput):
        parse_rate("0.9", "c", minimum=Decimal(1))


@pytest.mark.parametrize(("value", "fen"), [(0, 0), (8000, 8000), (MAX_FEN, MAX_FEN)])
def test_parse_fen_reads_whole_numbers(value, fen):
    assert parse_fen(value, "amount") == fen


@pytest.mark.parametrize(
    "value",
    [80.0, 1.5, "8000", "80.00", None, True, False, Decimal("8000"), [8000], -1, MAX_FEN + 1],
)
def test_parse_fen_rejects_non_integers_negatives_and_giants(value):
    with pytest.raises(InvalidInput) as e:
        parse_fen(value, "definition.components[0].amount")
    assert e.value.field == "definition.components[0].amount"


def test_parse_fen_signed():
    assert parse_fen(-1500, "amount", signed=True) == -1500
    with pytest.raises(InvalidInput):
        parse_fen(-MAX_FEN - 1, "amount", signed=True)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_parse_fen_rejects_every_float(value):
    with pytest.raises(InvalidInput):
        parse_fen(value, "amount", signed=True)
