"""Demo data for a newcomer's first run: staff, two channel codes, scans and customers, the
shipped sensitive-word packs, a retention policy, and a few archived conversations."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from domain.conversations.application import ConversationsApp
from domain.customers import privacy
from domain.customers.application import CustomersApp
from domain.orders.application import OrdersApp
from domain.orders.model import OrderLine, OrderSnapshot, Receiver
from domain.segments.application import SegmentsApp
from domain.shared import Meta, Refused

if TYPE_CHECKING:
    from infra.bootstrap import Container


def _meta(actor: str = "system:demo") -> Meta:
    return Meta(
        occurred_at=datetime.now(UTC),
        actor=actor,
        source="demo",
        correlation_id=str(uuid4()),
        causation_id="cmd:demo",
    )


def load_demo(app: CustomersApp) -> dict[str, str]:
    """Records a small, realistic history. Returns ids a newcomer can try queries with."""
    staff = [
        ("zhang.wei", "张伟", "east-sales", "shanghai"),
        ("li.na", "李娜", "east-sales", "hangzhou"),
        ("wang.fang", "王芳", "after-sales", "beijing"),
    ]
    for staff_id, name, dept, region in staff:
        app.register_staff(
            staff_id=staff_id, name=name, department=dept, region=region, meta=_meta()
        )
    spring = app.create_channel_code(
        name="春季门店海报",
        staff_pool=["zhang.wei", "li.na"],
        tags=["门店海报", "春季活动"],
        welcome_message="您好，欢迎咨询春季新品！",
        expires_at=None,
        max_scans=None,
        meta=_meta(),
    )
    live = app.create_channel_code(
        name="直播间引流码",
        staff_pool=["li.na", "wang.fang"],
        tags=["直播"],
        welcome_message="感谢关注直播间，专属顾问已为您服务。",
        expires_at=datetime.now(UTC) + timedelta(days=30),
        max_scans=12,
        meta=_meta(),
    )
    first_customer = ""
    for i in range(10):
        r = app.scan_channel_code(
            UUID(spring.id),
            identities={"wecom_external_userid": f"wmDemoCustomer{i:03d}"},
            device=f"device-{i % 4}",
            ip=f"10.0.0.{i}",
            meta=_meta(),
        )
        first_customer = first_customer or r.customer_id
    for i in range(14):  # the last two pass the cap: refusals are recorded too
        with contextlib.suppress(Refused):
            app.scan_channel_code(
                UUID(live.id),
                identities={"openid": f"oDemo{i:03d}", "unionid": f"uDemo{i:03d}"},
                device=None,
                ip=None,
                meta=_meta(),
            )
    vip = app.add_customer(
        identities=[("phone", "13800138000"), ("unionid", "uDemoVip")],
        tags=["VIP"],
        owner="zhang.wei",
        meta=_meta("staff:zhang.wei"),
    )
    app.disable_channel_code(UUID(live.id), reason="直播结束", expected_version=None, meta=_meta())
    return {
        "channel_code": spring.id,
        "live_code": live.id,
        "customer": first_customer,
        "vip_customer": vip.id,
    }


DEMO_CHATS = [
    ("zhang.wei", "wmDemoCustomer000", "您好，春季新品到店了，欢迎来看看"),
    ("wmDemoCustomer000", "zhang.wei", "这款理财是保本的吗？"),
    ("zhang.wei", "wmDemoCustomer000", "放心，稳赚不赔，零风险"),  # three finance rules at once
    ("li.na", "wmDemoCustomer001", "安装师傅明天上午到"),
    ("wmDemoCustomer001", "li.na", "好的，谢谢"),
]


def load_demo_archive(customers: CustomersApp, conversations: ConversationsApp) -> int:
    """Packs, a finance retention policy, and one archived batch. Returns messages archived."""
    conversations.install_shipped_packs(_meta())
    privacy.set_retention_policy(
        customers,
        industry="finance",
        communications_years=None,
        effective_from=datetime.now(UTC),
        meta=_meta(),
    )
    start = int(datetime.now(UTC).timestamp() * 1000) - 3_600_000
    records: list[object] = [
        {
            "seq": n + 1,
            "msgid": f"demo-msg-{n + 1}",
            "action": "send",
            "from": sender,
            "tolist": [to],
            "roomid": "",
            "msgtime": start + n * 60_000,
            "msgtype": "text",
            "text": {"content": text},
        }
        for n, (sender, to, text) in enumerate(DEMO_CHATS)
    ]
    return conversations.ingest(records, _meta("system:archive-pull")).archived


def load_demo_orders(orders: OrdersApp) -> int:
    """Two orders: a Tmall trade whose receiver phone is the VIP's (so it links to them and
    shows on their portrait; received this morning, so it earns them loyalty points and a
    tier), and a JD order whose buyer is still pending."""
    now = datetime.now(UTC)
    tmall = OrderSnapshot(
        platform="taobao",
        trade_id="4012345678900001",
        shop_id="demo-tmall-flagship",
        buyer_id="AAHdemo-tmall-buyer-0001",
        status="completed",
        placed_at=now - timedelta(days=2),
        paid_at=now - timedelta(days=2, minutes=-3),
        shipped_at=now - timedelta(days=1),
        completed_at=now - timedelta(hours=6),
        lines=(
            OrderLine(
                "40123456789000011",
                "LOCK-X1-BLK",
                "智能门锁 X1 黑色",
                1,
                199_900,
                179_900,
                20_000,
                "smart-locks",
            ),
            OrderLine(
                "40123456789000012", "BAT-AA-4", "门锁专用电池 4 节", 2, 2_500, 5_000, 0, "parts"
            ),
        ),
        total=204_900,
        discount=20_000,
        freight=0,
        payable=184_900,
        receiver=Receiver("王小明", "13800138000", "文三路 90 号", "浙江省", "杭州市", "西湖区"),
        carrier="SF",
        tracking_no="SF1400000000001",
    )
    jd = OrderSnapshot(
        platform="jd",
        trade_id="301234560001",
        shop_id="demo-jd-pop",
        buyer_id="oDemoJdBuyer0001",
        status="paid",
        placed_at=now - timedelta(hours=5),
        paid_at=now - timedelta(hours=5),
        lines=(
            OrderLine(
                "301234560001-1", "HOOD-Q7", "吸油烟机 Q7", 1, 329_900, 309_900, 20_000, "kitchen"
            ),
        ),
        total=329_900,
        discount=20_000,
        freight=0,
        payable=309_900,
        receiver=Receiver("李雷", "13700001111", "幸福路 8 号", "四川省", "成都市", "武侯区"),
    )
    result = orders.receive_batch(
        [(tmall, "demo-tmall-1"), (jd, "demo-jd-1")], _meta("system:demo")
    )
    return result.count("applied")


def load_demo_segments(segments: SegmentsApp) -> list[str]:
    """Three segments (智能分组): the VIP's Tmall order puts them in the first two; the silent
    one fills as the demo's customers stay quiet for a month."""
    admin = _meta("user:demo-admin")
    return [
        segments.define(
            name="高价值客户",
            rule={"field": "lifetime_value", "op": ">=", "value": 100_000},  # 1,000 yuan
            auto_tag="高价值",
            meta=admin,
        ).id,
        segments.define(
            name="近90天买过智能门锁",
            rule={"bought_category": "smart-locks", "within_days": 90},
            auto_tag=None,
            meta=admin,
        ).id,
        segments.define(
            name="沉默30天",
            rule={"field": "days_silent", "op": ">=", "value": 30},
            auto_tag=None,
            meta=admin,
        ).id,
    ]


def load_demo_tickets(c: Container, vip: str | None) -> str:
    """Work orders: the shipped installation workflow and template library, an installer in
    Hangzhou, routing rules, and an installation ticket for the VIP, assigned and scheduled.
    Runs once the read models are current (the roster is read from them)."""
    import json
    from pathlib import Path

    from domain.scope import Scope
    from domain.tickets.application import OpenTicket
    from domain.tickets.templates import shipped_templates
    from projections.follower import StoreFollower
    from projections.tickets.tickets import roster, templates_in_force

    library = Path(__file__).parents[1] / "domain" / "tickets" / "library"
    admin = _meta("user:demo-admin")
    c.customers.register_staff(
        staff_id="zhao.shifu", name="赵师傅", department="installers", region="hangzhou", meta=admin
    )
    c.tickets.define_workflow(json.loads((library / "installation.json").read_text()), admin)
    for template in shipped_templates():
        c.tickets.publish_template(template, expected_version=0, meta=admin)
    c.tickets.set_worker_profile(
        "zhao.shifu",
        regions=["杭州市"],
        service_types=["installation", "repair"],
        skills=["smart-locks", "air-conditioners"],
        capacity=8,
        meta=admin,
    )
    c.tickets.publish_routing_rules(
        {
            "fallback_queue": "general",
            "rules": [
                {
                    "name": "install",
                    "queue": "installation",
                    "keywords": ["安装", "装机"],
                    "action": "open_ticket",
                    "workflow": "installation",
                    "service_type": "installation",
                },
                {"name": "promotion", "queue": "ecommerce", "keywords": ["优惠", "活动", "券"]},
            ],
        },
        expected_version=0,
        meta=admin,
    )
    StoreFollower(c.engine, c.read_log).catch_up()
    opened = c.tickets.open_ticket(
        OpenTicket(
            workflow="installation",
            service_type="installation",
            region="浙江省杭州市西湖区",
            description="新买的智能门锁，想约周六上午上门安装",
            product="德施曼 Q5 智能锁",
            customer_id=UUID(vip) if vip else None,
        ),
        roster=lambda r, s, k: roster(c.read_db, r, s, k),
        templates=templates_in_force(c.read_db),
        meta=_meta("staff:li.na"),
    )
    c.tickets.transition(
        UUID(opened.id),
        "schedule",
        form={"visit_on": (datetime.now(UTC) + timedelta(days=3)).date().isoformat()},
        confirmation_code=None,
        expected_version=opened.version,
        scope=Scope("staff", staff_id="zhao.shifu"),
        meta=_meta("staff:zhao.shifu"),
    )
    return opened.id


def load_demo_settlement(c: Container) -> dict[str, str]:
    """Settlement: a weekly group of installers under the shipped installer rule set, 赵师傅
    as a payee, his jobs of last week priced line by line, last week closed and paid, and a
    job of this week accruing. Runs once the read models are current."""
    import json
    from pathlib import Path

    from domain.settlement.cycles import period_name, period_of
    from domain.settlement.rules import Facts
    from infra.settlement import close_period, issue_payouts, volumes
    from projections.follower import StoreFollower

    library = Path(__file__).parents[1] / "domain" / "settlement" / "library"
    finance = _meta("user:demo-finance")
    app = c.settlement
    app.define_group(
        "installers-weekly", name="安装师傅（周结）", cycle="weekly", timezone=None, meta=finance
    )
    now = datetime.now(UTC)
    this_week, _ = period_of("weekly", "Asia/Shanghai", now)
    last_week = this_week - timedelta(days=7)
    app.publish_rules(
        "installers",
        json.loads((library / "installers.json").read_text()),
        effective_from=last_week - timedelta(days=30),
        expected_version=0,
        meta=finance,
    )
    app.register_payee(
        "zhao.shifu",
        kind="installer",
        name="赵师傅",
        group="installers-weekly",
        rule_set="installers",
        region="浙江省杭州市",
        parent=None,
        staff_id="zhao.shifu",
        shops=[],
        account="oDemoWalletOpenid",
        meta=finance,
    )
    StoreFollower(c.engine, c.read_log).catch_up()
    jobs = [  # (day of last week, local hour, service type, km, customer's own parts)
        (0, 9, "smart_lock", "6", False),
        (1, 7, "smart_lock", "18.5", False),
        (2, 14, "air_conditioner", "12", False),
        (4, 21, "smart_lock", "4", True),
        (5, 10, "water_heater", "25", False),
    ]
    for n, (day, hour, service_type, km, own_parts) in enumerate(jobs):
        at = last_week + timedelta(days=day, hours=hour)
        c.settlement.accrue(
            f"demo:job:{n}",
            Facts(
                kind="service",
                payee_id="zhao.shifu",
                occurred_at=at,
                service_type=service_type,
                region="浙江省杭州市",
                distance_km=Decimal(km),
                materials_supplied_by="customer" if own_parts else None,
            ),
            volumes(c),
            _meta("system:settlement"),
        )
    StoreFollower(c.engine, c.read_log).catch_up()
    period = period_name("Asia/Shanghai", last_week)
    close_period(c, "installers-weekly", period, finance)
    StoreFollower(c.engine, c.read_log).catch_up()
    assert c.payout_gateway is not None
    issue_payouts(c, "installers-weekly", period, c.payout_gateway, finance)
    c.settlement.accrue(
        "demo:job:this-week",
        Facts(
            kind="service",
            payee_id="zhao.shifu",
            occurred_at=min(now, this_week + timedelta(hours=10)),
            service_type="smart_lock",
            region="浙江省杭州市",
            distance_km=Decimal("3"),
        ),
        volumes(c),
        _meta("system:settlement"),
    )
    return {"payee": "zhao.shifu", "group": "installers-weekly", "period": period}


# HQ's price strategy (docs/pricing.md): Hangzhou first-tier, Gansu third/fourth-tier with
# Dingxi a county; 满5000减800, a trade-in subsidy for old locks.
DEMO_STRATEGY: dict[str, Any] = {
    "band": {"min": "-0.05", "max": "0.05"},
    "tiers": {"first": "1.00", "third_fourth": "0.95", "county": "0.90"},
    "regions": {"330100": "first", "620000": "third_fourth", "621100": "county"},
    "default_tier": "third_fourth",
    "products": {"LOCK-S1": 199_900, "LOCK-X2": 299_900, "BATTERY": 9_900},
    "promotions": [
        {"id": "800-off-5000", "kind": "threshold", "threshold": 500_000, "off": 80_000},
        {"id": "old-lock-trade-in", "kind": "trade_in", "subsidy": 30_000, "cap_rate": "0.15"},
    ],
}


def load_demo_pricing(c: Container) -> None:
    """The strategy since the start of the year, Hangzhou floating 3% under it, and a flood
    relief override on Dingxi for the next three days."""
    now = datetime.now(UTC)
    start = datetime(now.year, 1, 1, tzinfo=UTC)
    hq = _meta("staff:hq.pricing")
    c.pricing.publish("default", DEMO_STRATEGY, effective_from=start, expected_version=0, meta=hq)
    c.pricing.set_float(
        "default", "330100", "-0.03", effective_from=start, meta=_meta("staff:hz.manager")
    )
    c.pricing.declare_override(
        "default",
        override_id="dingxi-flood",
        scope="621100",
        factor="0.85",
        reason="flood relief",
        starts_at=now,
        expires_at=now + timedelta(days=3),
        meta=hq,
    )


def load_demo_promotions(c: Container, customer: str | None) -> str | None:
    """A welcome coupon for the VIP customer, redeemed against an order, and points earned by
    it and by a review. Returns the coupon's code."""
    if customer is None:
        return None
    from domain.promotions.application import CouponSpec

    now = datetime.now(UTC)
    welcome = CouponSpec.parse("amount_off", 5_000, 20_000, now, now + timedelta(days=30))
    staff = _meta("staff:zhang.wei")
    code = c.promotions.issue_coupon(
        customer, welcome, issued_by="campaign", issuer_ref="welcome", meta=staff
    ).id
    c.promotions.redeem_coupon(code, order_ref="DEMO-T-1", order_total=29_900, meta=staff)
    c.promotions.earn_points(customer, 299, reason="order", ref="order:DEMO-T-1", meta=staff)
    c.promotions.earn_points(customer, 50, reason="review", ref="review:DEMO-T-1", meta=staff)
    # The loyalty program since New Year: the demo's completed orders earn their buyers'
    # customers points and a tier as soon as the API runs (docs/promotions.md).
    c.promotions.publish_program(
        DEMO_PROGRAM,
        effective_from=datetime(now.year, 1, 1, tzinfo=UTC),
        expected_version=0,
        meta=_meta("user:hq"),
    )
    return code


DEMO_PROGRAM = {
    "points_per_yuan": "1",
    "period_days": 365,
    "tiers": [
        {"key": "ordinary", "name": "普通会员", "min_spend": 0, "price_rate": "0.95"},
        {"key": "silver", "name": "银卡", "min_spend": 20_000, "price_rate": "0.9"},
        {"key": "gold", "name": "金卡", "min_spend": 2_000_000, "price_rate": "0.8",
         "adviser": True},
    ],
}  # fmt: skip


def load_demo_channel_alerts(c: Container, live_code: str) -> None:
    """The live-stream code expects a dozen scans in a quarter of an hour at most: its own
    thresholds make the demo's 14 scans a burst, which the detector reports as soon as the
    API runs (docs/channel-anomalies.md)."""
    start = datetime(datetime.now(UTC).year, 1, 1, tzinfo=UTC)
    c.channels.publish_thresholds(
        live_code,
        {"min_count": 12},
        effective_from=start,
        expected_version=0,
        meta=_meta("staff:zhang.wei"),
    )


def load_everything(c: Container) -> dict[str, str]:
    """Every part of the demo, in the order each needs the one before (tickets and
    settlement read the read models, so those are brought up to date first). Returns the ids
    the printed examples name."""
    ids = load_demo(c.customers)
    load_demo_archive(c.customers, c.conversations)
    load_demo_orders(c.orders)
    load_demo_segments(c.segments)
    c.start_follower().catch_up()
    ids["ticket"] = load_demo_tickets(c, ids.get("vip_customer"))
    ids |= load_demo_settlement(c)
    load_demo_pricing(c)
    load_demo_channel_alerts(c, ids["live_code"])
    coupon = load_demo_promotions(c, ids.get("vip_customer"))
    if coupon is not None:
        ids["coupon"] = coupon
    return ids
