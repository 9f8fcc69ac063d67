"""Settlement driven by the other contexts' events, on SQLite and PostgreSQL: a franchise store
paid on its shop's orders, split between HQ and the franchisee with an agent's rebate; a refund
clawing back at the original rates; a retroactive tier topped up by the close; regional trends."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from domain.orders.model import Refund
from domain.settlement.cycles import period_name, period_of
from domain.settlement.rules import Facts
from infra.bootstrap import Container
from infra.settlement import close_period, volumes
from projections.settlement import ledger
from projections.settlement import settlement as read
from tests.factories import meta
from tests.unit.test_projection_engine import A_TMALL_ORDER
from tests.unit.world import T0, project

FRANCHISE = {
    "components": [
        # The store keeps 10 % of every sale; 10 % more is shared HQ 7 : franchisee 3.
        {"name": "commission", "type": "commission", "tiers": [{"from": 0, "rate": "0.1"}]},
        {
            "name": "share",
            "type": "split",
            "rate": "0.1",
            "parties": {"hq": 7, "$payee": 3},
        },
        {"name": "rebate", "type": "rebates", "levels": ["0.01"]},
    ]
}


def accrue_all(c: Container) -> None:
    """Read models current, then the accruer over everything new, then the read models again."""
    assert c.accruer is not None
    project(c)
    while c.accruer.run_once() is not None:
        project(c)
    project(c)


def lines_of(c: Container, payee: str) -> list[tuple[str, str, int]]:
    return [
        (ln["source"].split(":")[-1], ln["type"], ln["amount"])
        for ln in read.earnings(c.read_db, payee)
    ]


def test_a_franchise_store_is_paid_on_its_shops_orders_and_refunds_claw_back(
    container: Container,
) -> None:
    app = container.settlement
    app.define_group(
        "stores-daily", name="社区店（日结）", cycle="daily", timezone=None, meta=meta()
    )
    app.publish_rules(
        "franchise",
        FRANCHISE,
        effective_from=T0 - timedelta(days=1),
        expected_version=0,
        meta=meta(),
    )
    for payee, kind, parent, shops in (
        ("hq", "brand", None, []),
        ("agent-zj", "agent", None, []),
        ("store-xihu", "store", "agent-zj", ["shop-1"]),
    ):
        app.register_payee(
            payee,
            kind=kind,
            name=payee,
            group="stores-daily",
            rule_set="franchise",
            region="浙江省杭州市",
            parent=parent,
            staff_id=None,
            shops=shops,
            account=None,
            meta=meta(),
        )
    project(container)
    # A Tmall order of shop-1, 1,800 yuan paid, later half refunded (900 yuan).
    container.orders.receive(replace(A_TMALL_ORDER, refunds=()), "d-1", meta(source="taobao"))
    accrue_all(container)
    assert lines_of(container, "store-xihu") == [
        ("store-xihu", "commission", 18_000),
        ("store-xihu", "split", 5_400),
    ]
    assert lines_of(container, "hq") == [("store-xihu", "split", 12_600)]
    assert lines_of(container, "agent-zj") == [("store-xihu", "rebates", 1_800)]

    container.orders.receive(A_TMALL_ORDER, "d-2", meta(source="taobao"))  # the refund arrives
    accrue_all(container)
    accrue_all(container)  # seen again: nothing twice
    assert lines_of(container, "store-xihu")[2:] == [
        ("store-xihu", "clawback", -9_000),
        ("store-xihu", "clawback", -2_700),
    ]
    assert lines_of(container, "hq")[1:] == [("store-xihu", "clawback", -6_300)]
    assert lines_of(container, "agent-zj")[1:] == [("store-xihu", "clawback", -900)]
    balances = ledger.balances(container.read_db, prefix="payable:")
    assert balances == {
        "payable:store-xihu": -(18_000 + 5_400) // 2,
        "payable:hq": -12_600 // 2,
        "payable:agent-zj": -1_800 // 2,
    }
    assert ledger.check(container.read_db)["ok"]

    # A second refund of the rest takes the rest, never more.
    rest = Refund("r-2", 90_000, None, T0 + timedelta(days=3))
    container.orders.receive(
        replace(A_TMALL_ORDER, refunds=(*A_TMALL_ORDER.refunds, rest)), "d-3", meta()
    )
    accrue_all(container)
    assert sum(a for _, _, a in lines_of(container, "store-xihu")) == 0
    assert sum(a for _, _, a in lines_of(container, "hq")) == 0

    trends = read.trends(container.read_db, region="杭州市")
    assert {(t["payee_id"], t["type"]) for t in trends} >= {
        ("store-xihu", "commission"),
        ("store-xihu", "clawback"),
        ("hq", "split"),
    }
    assert read.trends(container.read_db, region="宁波市") == []


def test_the_close_tops_up_a_retroactive_tier_once_the_period_is_over(
    container: Container,
) -> None:
    app = container.settlement
    tiers = [{"from": 0, "rate": "0.05"}, {"from": 3, "rate": "0.08", "retroactive": True}]
    app.define_group("distributors", name="分销", cycle="weekly", timezone=None, meta=meta())
    app.publish_rules(
        "distribution",
        {"components": [{"name": "commission", "type": "commission", "tiers": tiers}]},
        effective_from=T0 - timedelta(days=1),
        expected_version=0,
        meta=meta(),
    )
    app.register_payee(
        "dist-1",
        kind="distributor",
        name="分销商",
        group="distributors",
        rule_set="distribution",
        region=None,
        parent=None,
        staff_id=None,
        shops=[],
        account=None,
        meta=meta(),
    )
    project(container)
    for n in range(4):
        sale = Facts(
            kind="sale", payee_id="dist-1", occurred_at=T0 + timedelta(hours=n), amount=10_000
        )
        got = app.accrue(f"sale-{n}", sale, volumes(container), meta())
        project(container)
        # The 3rd and 4th sales reach the 8 % tier; the first two were priced at 5 %.
        assert [ln["amount"] for ln in got.lines] == [500 if n < 2 else 800]
    period = period_name("Asia/Shanghai", period_of("weekly", "Asia/Shanghai", T0)[0])
    close_period(container, "distributors", period, meta(), now=T0 + timedelta(days=30))
    project(container)
    statement = read.statement(container.read_db, "dist-1", "distributors", period)
    assert statement is not None
    [top_up] = [ln for ln in statement["lines"] if ln["event"] == "SettlementPeriodClosed"]
    assert top_up["amount"] == 2 * (800 - 500)
    assert top_up["inputs"]["rate"] == "0.08" and top_up["rule_version"] == 1
    assert statement["total"] == 4 * 800
    assert ledger.balances(container.read_db)["payable:dist-1"] == -4 * 800
