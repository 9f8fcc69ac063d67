"""Sensitive-word matching: one pass, normalised text, separators slipped in."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.conversations.compliance import SHIPPED_PACKS, Matcher, Rule, normalise


def finance() -> Matcher:
    return Matcher([("finance", 1, SHIPPED_PACKS["finance"])])


def words(hits: list) -> set[str]:  # type: ignore[type-arg]
    return {h.word for h in hits}


def test_a_forbidden_promise_is_found_with_its_pack_version_and_severity() -> None:
    hits = finance().scan("这款产品保本，而且稳赚不赔")
    assert words(hits) == {"保本", "稳赚", "稳赚不赔"}
    assert {(h.pack_id, h.pack_version) for h in hits} == {("finance", 1)}
    assert next(h for h in hits if h.word == "保本").severity == "critical"


def test_separators_and_full_width_do_not_hide_a_word() -> None:
    for text in ("保-本", "保 本", "保．本", "保\u3000本", "保·本！", "零 风 险", "ＡＢ零风险"):
        assert words(finance().scan(text)) & {"保本", "零风险"}, text


def test_latin_rules_match_regardless_of_case_and_width() -> None:
    m = Matcher([("tenant", 3, [Rule("VIP专享", "low"), Rule("100%有效", "high")])])
    assert words(m.scan("ｖｉｐ 专享，１００％有效")) == {"VIP专享", "100%有效"}


def test_clean_text_has_no_hits_and_one_rule_hits_once_per_message() -> None:
    assert finance().scan("您好，请问有什么可以帮您？") == []
    assert len(finance().scan("保本 保本 保本")) == 1


def test_packs_of_several_industries_match_in_one_pass() -> None:
    m = Matcher([(k, 1, v) for k, v in SHIPPED_PACKS.items()])
    assert words(m.scan("保过，还能根治，保本")) == {"保过", "根治", "保本"}


@given(
    st.text(max_size=200),
    st.sampled_from(["保本", "包录取", "根治"]),
    st.text(alphabet=" -_.,·、。！", max_size=3),
)
def test_a_word_with_separators_inside_any_text_is_always_found(
    text: str, word: str, sep: str
) -> None:
    m = Matcher([(k, 1, v) for k, v in SHIPPED_PACKS.items()])
    slipped = sep.join(word)
    assert word in words(m.scan(text + slipped + text))


def test_normalise_keeps_letters_and_digits_only() -> None:
    assert normalise("保-本 ＡＢＣ，123！") == "保本abc123"


def _reference_normalise(text: str) -> str:
    """The definition, written the slow and obvious way."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] in "LN")


@settings(max_examples=400, deadline=None)
@given(
    st.text(
        alphabet=st.one_of(
            st.characters(),  # anything at all
            st.sampled_from("保本稳赚，。？！ＡＢｃ１２　－・%①㍿ﬁßİ\u0301\u3000"),
        ),
        max_size=60,
    )
)
def test_the_fast_normalisation_equals_its_definition(text: str) -> None:
    assert normalise(text) == _reference_normalise(text)
