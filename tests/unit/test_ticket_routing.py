"""Routing rules and the template library: the first rule whose every condition holds decides,
urgency comes from urgent words, and a ticket gets the template that names its product."""

from __future__ import annotations

from typing import Any

import pytest

from domain.shared import InvalidInput
from domain.tickets.routing import parse_rules, route
from domain.tickets.templates import match_template, parse_template, shipped_templates

RULES = parse_rules(
    {
        "fallback_queue": "general",
        "rules": [
            {
                "name": "zhejiang_install",
                "queue": "install_zj",
                "keywords": ["安装"],
                "regions": ["浙江"],
                "action": "open_ticket",
                "workflow": "installation",
                "service_type": "installation",
            },
            {
                "name": "install",
                "queue": "install",
                "keywords": ["安装", "装机"],
                "action": "open_ticket",
                "workflow": "installation",
                "service_type": "installation",
            },
            {
                "name": "lock_emergency",
                "queue": "lock_urgent",
                "products": ["门锁", "智能锁"],
                "urgent_only": True,
            },
            {"name": "promo", "queue": "ecommerce", "keywords": ["优惠", "活动"]},
        ],
    }
)


@pytest.mark.parametrize(
    ("text", "region", "product", "queue", "urgency"),
    [
        ("空调 安-装 要多久", "浙江省杭州市", None, "install_zj", "normal"),  # separators ignored
        ("空调安装要多久", "江苏省南京市", None, "install", "normal"),
        ("门打不开门了，急！", None, "德施曼 智能锁 Q5", "lock_urgent", "urgent"),
        ("门锁怎么换电池", None, None, "general", "normal"),  # a lock, but not urgent
        ("ＶＩＰ优惠还有吗", None, None, "ecommerce", "normal"),  # full-width letters
        ("你好", None, None, "general", "normal"),
    ],
)
def test_the_first_rule_that_holds_decides(
    text: str, region: str | None, product: str | None, queue: str, urgency: str
) -> None:
    decision = route(RULES, text=text, region=region, product=product)
    assert (decision.queue, decision.urgency) == (queue, urgency)


def test_a_decision_names_its_rule_and_what_matched() -> None:
    d = route(RULES, text="想预约装机", region=None, product=None)
    assert (d.rule, d.action, d.workflow, d.matched) == (
        "install",
        "open_ticket",
        "installation",
        ("装机",),
    )
    assert route(RULES, text="你好", region=None, product=None).rule is None


def test_rules_round_trip_through_their_stored_form() -> None:
    assert parse_rules(RULES.as_dict()) == RULES


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"rules": []}, "rules"),
        ({"rules": [{"name": "a", "queue": "q", "action": "open_ticket"}]}, "rules[0].workflow"),
        ({"rules": [{"name": "a", "queue": "q", "workflow": "w"}]}, "rules[0].action"),
        ({"rules": [{"name": "a", "queue": "q"}, {"name": "a", "queue": "r"}]}, "rules[1].name"),
        ({"rules": [{"name": "a", "queue": "q", "keywords": [""]}]}, "rules[0].keywords[0]"),
        ({"rules": [{"name": "a", "queue": "q"}], "colour": 1}, "colour"),
    ],
)
def test_bad_rules_name_the_part_at_fault(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_rules(raw)
    assert refused.value.field == field


LIBRARY = [(1, t) for t in shipped_templates()]


@pytest.mark.parametrize(
    ("service_type", "product", "description", "key"),
    [
        ("installation", "格力 3匹 柜机", "新房装空调", "ac_installation"),
        ("installation", None, "指纹锁到货了，约师傅上门安装", "smart_lock_installation"),
        ("repair", None, "空调不制冷还漏水", "ac_repair"),
        ("repair", "德施曼智能锁", "识别不了指纹", "smart_lock_repair"),
        ("installation", None, "燃气热水器安装", "water_heater_installation"),
        ("return_exchange", "洗衣机", "质量问题要退货", "return_exchange"),
        ("repair", None, "你好在吗", None),  # nothing beyond the service type: no match
    ],
)
def test_the_shipped_library_matches_common_requests(
    service_type: str, product: str | None, description: str, key: str | None
) -> None:
    found = match_template(
        LIBRARY, service_type=service_type, product=product, description=description
    )
    assert (found.key if found else None) == key


def test_a_product_outweighs_generic_words_and_the_match_says_why() -> None:
    found = match_template(
        LIBRARY, service_type="installation", product="智能锁", description="安装 打孔 装机"
    )
    assert found is not None and found.key == "smart_lock_installation"
    assert "智能锁" in found.matched and found.version == 1


def test_a_template_needs_steps_and_something_to_match() -> None:
    with pytest.raises(InvalidInput) as no_terms:
        parse_template({"key": "x", "name": "X", "service_type": "repair", "steps": ["a"]})
    assert no_terms.value.field == "products"
    with pytest.raises(InvalidInput) as no_steps:
        parse_template({"key": "x", "name": "X", "service_type": "repair", "keywords": ["a"]})
    assert no_steps.value.field == "steps"
