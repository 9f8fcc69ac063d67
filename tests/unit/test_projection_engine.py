"""Read models apply each event exactly once and can be rebuilt from the log at any time."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest

from domain.audit.exports import export_scope
from domain.customers import privacy
from domain.customers.groups import GroupChange
from domain.customers.rfm import DEFAULT_BANDS, publish_rfm_model
from domain.orders.model import OrderLine, OrderSnapshot, Receiver, Refund
from domain.scope import Scope
from domain.settlement.cycles import period_name, period_of
from domain.settlement.reconciling import resolve_finding
from domain.settlement.rules import Facts
from domain.tickets.application import OpenTicket
from domain.tickets.templates import shipped_templates
from infra import exports
from infra.bootstrap import Container, bootstrap
from infra.reconciliation import import_file
from infra.settings import Settings
from infra.settlement import close_period, issue_payouts, volumes
from projections.engine import NotCaughtUp
from projections.tickets.tickets import roster, templates_in_force
from tests.factories import meta
from tests.statements import Paid, wechat_trade_bill
from tests.unit.test_tickets import INSTALLATION
from tests.unit.world import T0, World, dump, embedded_only, project

READ_MODELS = [
    "staff",
    "portrait",
    "channel_stats",
    "conversations",
    "compliance",
    "archive_access",
    "search",
    "groups",
    "privacy",
    "orders",
    "purchases",
    "segments",
    "tickets",
    "settlement",
    "ledger",
    "reconciliation",
    "audit",
    "exports",
    "promotions",
    "dashboards",
    "channel_anomalies",
    "handover",
    "campaigns",
    "automation",
]
A_TMALL_ORDER = OrderSnapshot(
    platform="taobao",
    trade_id="2088000000001",
    shop_id="shop-1",
    buyer_id="AAHk5d-buyer",
    status="shipped",
    placed_at=T0,
    lines=(OrderLine("o1", "sku-1", "智能门锁", 2, 100_000, 180_000, 20_000, "locks"),),
    total=200_000,
    discount=20_000,
    freight=0,
    payable=180_000,
    paid_at=T0 + timedelta(minutes=5),
    shipped_at=T0 + timedelta(days=1),
    receiver=Receiver("张三", "13800138000", "文三路1号", "浙江省", "杭州市", "西湖区"),
    refunds=(Refund("r-1", 90_000, "o1", T0 + timedelta(days=2)),),
)
ARCHIVE: list[object] = [
    {
        "seq": 1,
        "msgid": "m1",
        "action": "send",
        "from": "zhang.wei",
        "tolist": ["wmCustomer0001"],
        "roomid": "",
        "msgtime": 1_767_000_000_000,
        "msgtype": "text",
        "text": {"content": "您好，保本的"},
    },
    {
        "seq": 2,
        "msgid": "m2",
        "action": "recall",
        "from": "zhang.wei",
        "tolist": ["wmCustomer0001"],
        "roomid": "",
        "msgtime": 1_767_000_001_000,
        "msgtype": "revoke",
        "revoke": {"pre_msgid": "m1"},
    },
]


def dumps(container: Container) -> dict[str, dict]:
    return {name: dump(container, name) for name in READ_MODELS}


@embedded_only
def test_every_read_model_is_registered(container: Container) -> None:
    assert sorted(container.engine.projections) == sorted(READ_MODELS)
    assert container.engine.positions() == dict.fromkeys(READ_MODELS, 0)


def test_applying_the_same_batch_twice_changes_nothing(container: Container) -> None:
    World(container.customers)
    records = container.read_log(0, 1000)

    first = container.engine.apply_batch(records)
    after_first = dumps(container)
    second = container.engine.apply_batch(records)

    assert first == len(records) * len(READ_MODELS)
    assert second == 0
    assert dumps(container) == after_first
    assert container.engine.positions() == dict.fromkeys(READ_MODELS, container.head())
    assert after_first["portrait"]["portrait_customers"]  # the models are not empty


def test_an_overlapping_redelivery_applies_only_what_is_new(container: Container) -> None:
    World(container.customers)
    records = container.read_log(0, 1000)
    engine = container.engine

    engine.apply_batch(records[:7])
    applied = engine.apply_batch(records[3:])
    overlapped = dumps(container)
    for name in READ_MODELS:
        engine.rebuild(name, [records])

    assert applied == (len(records) - 7) * len(READ_MODELS)
    assert dumps(container) == overlapped


@embedded_only
def test_each_read_model_keeps_its_own_position(container: Container) -> None:
    World(container.customers)
    records = container.read_log(0, 1000)
    head = container.head()

    container.engine.apply_batch(records, only=["staff"])
    assert container.engine.positions() == {"staff": head} | dict.fromkeys(READ_MODELS[1:], 0)
    assert container.engine.low_water_mark() == 0

    applied = container.engine.apply_batch(records)

    assert applied == (len(READ_MODELS) - 1) * len(records)
    assert container.engine.positions() == dict.fromkeys(READ_MODELS, head)


def test_a_failing_batch_leaves_rows_and_position_as_they_were(container: Container) -> None:
    World(container.customers)
    records = container.read_log(0, 1000)
    container.engine.apply_batch(records[:5])
    before, positions = dumps(container), container.engine.positions()

    def fail(cur: object) -> None:
        raise RuntimeError("the projector's cursor could not move")

    with pytest.raises(RuntimeError):
        container.engine.apply_batch(records, also=fail)

    assert dumps(container) == before
    assert container.engine.positions() == positions


@pytest.mark.parametrize("name", READ_MODELS)
def test_a_rebuilt_read_model_equals_the_live_one(
    container: Container, name: str, tmp_path: Path
) -> None:
    world = World(container.customers)
    app = container.customers
    container.orders.receive(A_TMALL_ORDER, "digest-1", meta(source="taobao"))
    privacy.set_retention_policy(
        app, industry="finance", communications_years=None, effective_from=T0, meta=meta()
    )
    publish_rfm_model(
        app, bands=DEFAULT_BANDS.as_dict(), effective_from=T0, expected_version=0, meta=meta()
    )
    privacy.place_legal_hold(app, world.c4, case_reference="c-1", authority="court", meta=meta())
    for customer in (world.c3, world.c4):  # c3 is erased at once, c4 waits for its hold
        privacy.request_erasure(
            app,
            customer,
            received_via="email",
            now=T0 + timedelta(days=1),
            last_contact=lambda subjects: None,
            meta=meta(),
        )
    # c2 is merged into c1 for good; c5 (whose phone stays sealed under its own key) is merged
    # in and the merge undone.
    admin = Scope(role="admin")
    for absorbed in (world.c2, world.c5):
        app.merge_customers(
            world.c1,
            absorbed,
            reason="one person",
            expected_versions=None,
            scope=admin,
            meta=meta(),
        )
    app.undo_merge(world.c1, world.c5, reason="two people", scope=admin, meta=meta())
    container.conversations.install_shipped_packs(meta())
    container.conversations.ingest(ARCHIVE, meta())  # so that every read model has rows
    container.conversations.record_access(
        reader="user:auditor",
        role="auditor",
        purpose="quarterly sample",
        query={},
        message_ids=["m1"],
        meta=meta(),
    )
    for change_type, detail, members in [
        ("create", None, ()),
        ("update", "add_member", ("v1", "v2", "a")),
        ("update", "del_member", ("v2",)),
    ]:
        container.customers.apply_group_change(
            GroupChange(change_type, "wrGroup", f"{change_type}:{detail}", detail, members=members),
            meta(source="wecom"),
        )
    # A segment whose members the evaluator records (c1 and c5 enter, auto-tagged); its
    # revision lets c5 go again.
    segment = container.segments.define(
        name="重点客户",
        rule={"field": "tags", "op": "contains", "value": "vip"},
        auto_tag="重点",
        meta=meta(),
    )
    for rule in (None, {"field": "owner", "op": "=", "value": "a"}):
        if rule is not None:
            container.segments.revise(
                UUID(segment.id), rule=rule, reason="only a's", expected_version=1, meta=meta()
            )
        project(container)
        container.segment_evaluator.run_until_caught_up()  # type: ignore[union-attr]
    open_a_ticket_and_breach_it(container, world.c1)
    project(container)
    settle_a_week(container)
    use_coupons_and_points(container, str(world.c1))
    use_handover(container)
    use_channel_anomalies(container)
    use_campaigns(container)
    use_automation(container)
    window = export_scope(T0 - timedelta(days=400), T0 + timedelta(days=400))
    exports.produce(
        container, window, tmp_path / "export", requested_by="user:r", role="regulator", meta=meta()
    )
    project(container)
    live, positions = dump(container, name), container.engine.positions()

    replayed = container.engine.rebuild(name, container.log_batches(batch=4))

    assert replayed == container.head()
    assert dump(container, name) == live
    assert container.engine.positions() == positions
    assert any(live.values())


def use_automation(container: Container) -> None:
    """Automation's read model: a rule paused and resumed; a sweep's runs (a tag, messages
    sent, one after a failed attempt, and some nobody can receive); a metric's ticket that
    could not be opened."""
    from datetime import UTC, datetime

    from infra.automation import sweep

    a, now = container.automation, datetime.now(UTC)
    wake = {
        "trigger": {"kind": "time", "silent_days": 1},
        "actions": [{"add_tags": ["沉睡"]},
                    {"send_message": {"channel": "wecom", "template": "miss-you"}}],
    }  # fmt: skip
    dropoff = {
        "trigger": {"kind": "metric", "metric": "channel_dropoff", "threshold": "0"},
        "actions": [{"open_ticket": {"workflow": "no-such-flow", "service_type": "check",
                                     "description": "渠道流失率上升"}}],
    }  # fmt: skip
    for key, rule in (("wake", wake), ("dropoff", dropoff)):
        a.publish_rule(
            key, rule, effective_from=now - timedelta(days=1), expected_version=0, meta=meta()
        )
    a.pause("wake", reason="review", meta=meta())
    a.resume("wake", reason="", meta=meta())
    project(container)
    assert container.outreach_gateway is not None
    container.outreach_gateway.fail_next = ["errcode 45009"]
    assert sweep(container, now + timedelta(days=30))["fired"]
    project(container)
    sweep(container, now + timedelta(days=30, hours=1))


def use_campaigns(container: Container) -> None:
    """The campaigns read model: a campaign, views, invitees two levels down, successes that
    issue a coupon, a self-invitation flagged and its reward held, then released."""
    from tests.unit.test_campaigns import use_a_campaign

    use_a_campaign(container)


def use_channel_anomalies(container: Container) -> None:
    """The channel anomalies read model: the world's scans counted per minute, the burst of
    `spring` detected (two scans a day are one here), acknowledged and resolved."""
    from projections.channels import anomalies

    ch = container.channels
    ch.publish_thresholds(
        "default",
        {"window_minutes": 1440, "min_count": 2, "baseline": None, "quiet_hours": None},
        effective_from=T0 - timedelta(days=30),
        expected_version=None,
        meta=meta(),
    )
    project(container)
    assert container.anomaly_detector is not None
    while container.anomaly_detector.run_once() is not None:
        project(container)
    [alert] = anomalies.anomalies(container.read_db)
    ch.acknowledge(alert["anomaly_id"], note="seen", meta=meta())
    ch.resolve(alert["anomaly_id"], outcome="expected", note="the fair", meta=meta())


def use_handover(container: Container) -> None:
    """The handover read model: b's customers to a, who is at the limit (pending), then
    retried to w (handed over, completed)."""
    admin = Scope(role="admin")
    project(container)
    container.handover.start(
        kind="transfer", from_staff="b", to_staff="a", department=None, reason="moving",
        key="use-handover", customer_limit=1, scope=admin, meta=meta(),
    )  # fmt: skip
    done = container.handover.retry(
        "use-handover", items=None, to_staff="w", scope=admin, meta=meta()
    )
    assert done.status == "completed" and any(i["attempts"] == 2 for i in done.items)


def use_coupons_and_points(container: Container, customer: str) -> None:
    """The promotions read models: a coupon redeemed, one revoked, one expired by the sweep,
    points earned and exchanged for a coupon, the loyalty program, points clawed back, tiers."""
    from datetime import UTC, datetime

    from domain.promotions.application import CouponSpec
    from infra.promotions import sweep_expired

    p, now = container.promotions, datetime.now(UTC)
    spec = CouponSpec.parse(
        "amount_off", 1_000, 0, now - timedelta(days=2), now + timedelta(days=9)
    )
    lapsed = CouponSpec.parse(
        "amount_off", 1_000, 0, now - timedelta(days=2), now - timedelta(days=1)
    )
    used = p.issue_coupon(customer, spec, issued_by="staff", issuer_ref="a", meta=meta()).id
    p.redeem_coupon(used, order_ref="T-1", order_total=5_000, meta=meta())
    dropped = p.issue_coupon(customer, spec, issued_by="rule", issuer_ref="r", meta=meta()).id
    p.revoke_coupon(dropped, reason="mistake", meta=meta())
    p.issue_coupon(customer, lapsed, issued_by="campaign", issuer_ref="c", meta=meta())
    p.earn_points(customer, 500, reason="order", ref="order:T-1", meta=meta())
    p.exchange_points_for_coupon(customer, 200, spec, meta=meta())
    project(container)
    assert sweep_expired(container, meta())
    # The loyalty program: an order's points, half clawed back; a first tier, then a higher.
    from tests.unit.test_loyalty import PROGRAM

    p.publish_program(
        PROGRAM, effective_from=now - timedelta(days=1), expected_version=0, meta=meta()
    )
    p.credit_order(customer, "order:T-5", 900, change_ref="order:T-5", meta=meta())
    p.credit_order(customer, "order:T-5", 450, change_ref="refund:T-5:R-1", meta=meta())
    assert p.review_membership(customer, 0, meta=meta()) == "ordinary"
    assert p.review_membership(customer, 600_000, meta=meta()) == "silver"


def settle_a_week(container: Container) -> None:
    """Settlement's, the ledger's and reconciliation's read models: a job held until its payee
    registers, a sale with a rebate and a clawback, a correction, a dispute, a closed week, a
    payout, a statement imported and one of its findings resolved."""
    app = container.settlement
    tiers = [{"from": 0, "rate": "0.05"}, {"from": 2, "rate": "0.08", "retroactive": True}]
    rules = {
        "components": [
            {"name": "base", "type": "base_fee", "by_service_type": {"installation": 8000}},
            {"name": "commission", "type": "commission", "for": ["sale"], "tiers": tiers},
            {"name": "rebate", "type": "rebates", "levels": ["0.01"]},
        ]
    }
    app.define_group("weekly", name="每周", cycle="weekly", timezone=None, meta=meta())
    app.publish_rules(
        "std", rules, effective_from=T0 - timedelta(days=30), expected_version=0, meta=meta()
    )
    count = volumes(container)
    job = Facts(kind="service", payee_id="inst", occurred_at=T0, service_type="installation")
    assert app.accrue("job-1", job, count, meta()).held  # nobody to pay yet
    app.register_payee(
        "agent",
        kind="agent",
        name="代理",
        group="weekly",
        rule_set="std",
        region="浙江省",
        parent=None,
        staff_id=None,
        shops=[],
        account=None,
        meta=meta(),
    )
    app.register_payee(
        "inst",
        kind="distributor",
        name="张",
        group="weekly",
        rule_set="std",
        region="浙江省",
        parent="agent",
        staff_id=None,
        shops=[],
        account="openid-1",
        meta=meta(),
    )
    project(container)
    app.price_held("job-1", "inst", volumes(container), meta())
    for n in range(3):
        sale = replace(
            job, kind="sale", amount=10_000 * (n + 1), occurred_at=T0 + timedelta(hours=n)
        )
        app.accrue(f"sale-{n}", sale, volumes(container), meta())
        project(container)
    app.claw_back("sale-0", "refund-1", 5_000, meta())
    base = {"name": "base", "type": "base_fee", "by_service_type": {"installation": 9000}}
    revised = {"components": [base, *rules["components"][1:]]}
    app.publish_rules(
        "std", revised, effective_from=T0 - timedelta(days=1), expected_version=1, meta=meta()
    )
    app.correct("job-1", rule_version=2, reason="v2", volumes_for=count, meta=meta())
    dispute = app.dispute("sale-1", 0, "rate", meta())
    app.resolve_dispute(
        "sale-1", dispute.id, outcome="adjusted", amount=100, note="ok", meta=meta()
    )
    project(container)
    period = period_name("Asia/Shanghai", period_of("weekly", "Asia/Shanghai", T0)[0])
    close_period(container, "weekly", period, meta(), now=T0 + timedelta(days=400))
    project(container)
    gateway = container.payout_gateway
    assert gateway is not None
    issue_payouts(container, "weekly", period, gateway, meta())
    project(container)
    # Reconciliation: a WeChat Pay bill holding the Tmall order and a payment the books do not
    # know; finance explains the stranger.
    bill = wechat_trade_bill(
        [
            Paid(A_TMALL_ORDER.trade_id, 180_000, 1_080, T0 + timedelta(minutes=5)),
            Paid("SO-unknown", 5_990, 36, T0 + timedelta(hours=1)),
        ]
    )
    imported = import_file(container, "wechat_pay", bill, "20250301.csv", "0.006", meta())
    assert imported.counts["matched"] == 1 and imported.findings == 1
    resolve_finding(app, UUID(imported.id), 0, "explained", "测试订单", meta())
    project(container)


def open_a_ticket_and_breach_it(container: Container, customer: UUID) -> None:
    """Tickets' read model: a workflow, a worker, a ticket assigned, moved and overdue."""
    tickets = container.tickets
    tickets.define_workflow(INSTALLATION, meta())
    container.customers.register_staff(
        staff_id="fitter", name="李师傅", department="service", region="杭州", meta=meta()
    )
    tickets.set_worker_profile(
        "fitter",
        regions=["杭州"],
        service_types=["installation"],
        skills=[],
        capacity=None,
        meta=meta(),
    )
    tickets.publish_template(shipped_templates()[0], expected_version=0, meta=meta())
    project(container)
    opened = tickets.open_ticket(
        OpenTicket(
            workflow="installation",
            service_type="installation",
            region="浙江省杭州市",
            description="空调安装",
            customer_id=customer,
        ),
        roster=lambda r, s, k: roster(container.read_db, r, s, k),
        templates=templates_in_force(container.read_db),
        meta=meta(at=T0),
    )
    tickets.transition(
        UUID(opened.id),
        "schedule",
        form={"visit_on": "2026-03-05"},
        confirmation_code=None,
        expected_version=None,
        scope=Scope("staff", staff_id="fitter"),
        meta=meta(at=T0),
    )
    tickets.comment(UUID(opened.id), "客户要求下午上门", meta())
    tickets.breach_overdue([UUID(opened.id)], T0 + timedelta(days=30), meta())


def test_the_live_follower_keeps_read_models_at_the_head(container: Container) -> None:
    world = World(container.customers)
    follower = container.start_follower()

    container.engine.wait_for(container.head(), timeout=10)

    assert follower.error is None
    assert container.engine.positions() == dict.fromkeys(READ_MODELS, container.head())
    assert container.read_db.query(
        "SELECT owner FROM portrait_customers WHERE customer_id = ?", (str(world.c4),)
    ) == [("w",)]


@embedded_only
def test_waiting_for_a_position_not_yet_reached_says_how_far_each_model_is(
    container: Container,
) -> None:
    World(container.customers)
    container.engine.apply_batch(container.read_log(0, 5))

    with pytest.raises(NotCaughtUp) as behind:
        container.engine.wait_for(container.head(), timeout=0.05)

    assert behind.value.wanted == container.head()
    assert behind.value.positions == dict.fromkeys(READ_MODELS, 5)


def test_a_statement_failing_inside_a_batch_rolls_the_whole_batch_back(
    container: Container,
) -> None:
    """On PostgreSQL batches are pipelined: the error arrives late, and still undoes all."""
    World(container.customers)
    records = container.read_log(0, 1000)
    container.engine.apply_batch(records[:5])
    before, positions = dumps(container), container.engine.positions()

    def bad_sql(cur: object) -> None:
        cur.execute("INSERT INTO no_such_table (x) VALUES (?)", (1,))  # type: ignore[attr-defined]

    with pytest.raises(Exception, match="no_such_table"):
        container.engine.apply_batch(records, also=bad_sql)

    assert dumps(container) == before
    assert container.engine.positions() == positions
    assert container.engine.apply_batch(records) == len(READ_MODELS) * (len(records) - 5)


def test_a_read_model_whose_shape_changed_is_replayed_from_the_log_on_start(
    container: Container, settings: Settings
) -> None:
    World(container.customers)
    project(container)
    live = dump(container, "portrait")
    with container.read_db.transaction() as cur:  # as a release before `status` left it
        cur.execute("DROP TABLE portrait_customers")
        cur.execute("CREATE TABLE portrait_customers (customer_id TEXT PRIMARY KEY)")
        cur.execute("UPDATE projection_schemas SET position = 1 WHERE name = 'portrait'")
    again = bootstrap(settings)
    try:
        assert again.engine.stale == []
        assert dump(again, "portrait") == live
        assert again.engine.positions()["portrait"] == container.head()
    finally:
        again.close()
