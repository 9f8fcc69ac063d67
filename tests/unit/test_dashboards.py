"""The dashboards' rollups: a channel code's funnel (scans → adds → first orders → GMV) by code,
staff and day, with a refund taken off where its order was paid and a buyer linked late
bringing their order with them; regional heat; staff response times from the archive;
promotion cost by region and coupon redemption by issuer."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from domain.orders.model import OrderLine, OrderSnapshot, Receiver, Refund
from domain.promotions.application import CouponSpec
from domain.scope import Scope
from domain.tickets.application import OpenTicket
from domain.tickets.assignment import Candidate
from infra.bootstrap import Container
from projections.dashboards import queries
from projections.dashboards.rollups import split_region
from tests.factories import meta
from tests.unit.test_tickets import INSTALLATION, TEMPLATES, roster
from tests.unit.world import T0, hire, print_code, project, scan

DAY = timedelta(days=1)
WINDOW = ((T0 - DAY).date().isoformat(), (T0 + 30 * DAY).date().isoformat())


def paid_order(trade_id: str, buyer: str, amount: int, at_day: int) -> OrderSnapshot:
    at = T0 + at_day * DAY
    return OrderSnapshot(
        platform="taobao",
        trade_id=trade_id,
        shop_id="shop-1",
        buyer_id=buyer,
        status="paid",
        placed_at=at,
        paid_at=at,
        lines=(OrderLine("l-1", "LOCK-X2", "智能门锁 X2", 1, amount, amount, 0, "locks"),),
        total=amount,
        discount=0,
        freight=0,
        payable=amount,
        receiver=Receiver("王小明", "13912345678", "文三路 90 号", "浙江省", "杭州市", "西湖区"),
    )


def a_month_of_business(c: Container) -> dict[str, str]:
    hire(c.customers, "a", "b")
    code = print_code(c.customers, ["a", "b"])
    first = scan(c.customers, code, "wmVisitor000001")
    second = scan(c.customers, code, "wmVisitor000002", at=T0 + timedelta(minutes=5))
    scan(c.customers, code, "wmVisitor000001", at=T0 + timedelta(minutes=9))  # back again
    v1, v2 = str(first.customer_id), str(second.customer_id)
    admin = Scope("admin")
    c.customers.add_identity(
        UUID(v1), kind="taobao_buyer", value="buyer-1", scope=admin, meta=meta(at=T0)
    )
    receive = c.orders.receive
    receive(paid_order("T-1", "buyer-1", 100_000, 1), "d-1", meta(source="taobao"))
    receive(paid_order("T-2", "buyer-2", 50_000, 2), "d-2", meta(source="taobao"))
    refund = Refund("R-1", 20_000, None, T0 + 3 * DAY)
    receive(
        OrderSnapshot(
            **{**paid_order("T-1", "buyer-1", 100_000, 1).__dict__, "refunds": (refund,)}
        ),
        "d-3",
        meta(source="taobao"),
    )
    # buyer-2 is found to be the second visitor only now: their order comes along.
    c.customers.add_identity(
        UUID(v2), kind="taobao_buyer", value="buyer-2", scope=admin, meta=meta(at=T0 + 5 * DAY)
    )
    c.tickets.define_workflow(INSTALLATION, meta())
    c.tickets.open_ticket(
        OpenTicket(
            workflow="installation", service_type="installation", region="浙江省杭州市西湖区",
            description="门锁上门安装", product="智能门锁 X2",
        ),
        roster=roster(Candidate("a", 1, 5)), templates=TEMPLATES, meta=meta(at=T0 + 4 * DAY),
    )  # fmt: skip
    # The first visitor writes to their staff member at 10:00, again at 10:01; the answer
    # comes at 10:02.
    sent = int((T0 + DAY).timestamp() * 1000)
    staff = str(first.assigned_staff)
    c.conversations.ingest(
        [
            {"seq": 1, "msgid": "q1", "action": "send", "from": "wmVisitor000001",
             "tolist": [staff], "roomid": "", "msgtime": sent, "msgtype": "text",
             "text": {"content": "门锁什么时候到？"}},
            {"seq": 2, "msgid": "q2", "action": "send", "from": "wmVisitor000001",
             "tolist": [staff], "roomid": "", "msgtime": sent + 60_000, "msgtype": "text",
             "text": {"content": "在吗"}},
            {"seq": 3, "msgid": "a1", "action": "send", "from": staff,
             "tolist": ["wmVisitor000001"], "roomid": "", "msgtime": sent + 120_000,
             "msgtype": "text", "text": {"content": "明天到"}},
        ],
        meta(),
    )  # fmt: skip
    spec = CouponSpec.parse("amount_off", 5_000, 0, T0, T0 + 60 * DAY)
    coupon = c.promotions.issue_coupon(
        v1, spec, issued_by="campaign", issuer_ref="spring", meta=meta(at=T0 + 6 * DAY)
    ).id
    c.promotions.redeem_coupon(
        coupon, order_ref="T-3", order_total=30_000, meta=meta(at=T0 + 7 * DAY)
    )
    c.promotions.issue_coupon(
        v2, spec, issued_by="staff", issuer_ref="b", meta=meta(at=T0 + 6 * DAY)
    )
    project(c)
    return {"code": str(code), "v1": v1, "v2": v2, "first_staff": staff}


def test_the_funnel_counts_each_step_per_code_staff_and_day(container: Container) -> None:
    c = container
    seen = a_month_of_business(c)
    by_code = queries.funnel(c.read_db, "code", *WINDOW, limit=10)
    (code,) = by_code["items"]
    assert (code["code_id"], code["name"]) == (seen["code"], "spring fair")
    # 3 scans, 2 new customers, both bought (one linked late); 1,000 - 200 refunded + 500.
    assert (code["scans"], code["adds"], code["first_orders"], code["gmv"]) == (
        3,
        2,
        2,
        130_000,
    )
    assert (code["add_rate"], code["conversion_rate"], code["gmv_per_add"]) == (0.6667, 1.0, 65_000)
    assert by_code["totals"]["gmv"] == 130_000

    days = {d["day"]: d for d in queries.funnel(c.read_db, "day", *WINDOW, limit=10)["items"]}
    assert days[(T0 + DAY).date().isoformat()]["gmv"] == 80_000  # the refund lands on its day
    assert days[(T0 + 2 * DAY).date().isoformat()]["first_orders"] == 1  # linked on day 5

    staff = {s["staff_id"]: s for s in queries.staff_ranking(c.read_db, *WINDOW, "gmv", 10)}
    first = staff[seen["first_staff"]]
    assert (first["adds"], first["conversions"], first["gmv"]) == (1, 1, 80_000)
    # Asked at 10:00 and again at 10:01, answered at 10:02: waited two minutes, once.
    assert (first["replies"], first["average_response_seconds"]) == (1, 120)
    assert first["name"] == f"员工 {seen['first_staff']}"


def test_regional_heat_promotion_cost_and_coupon_redemption(container: Container) -> None:
    c = container
    a_month_of_business(c)
    months = (T0.strftime("%Y-%m"), (T0 + 40 * DAY).strftime("%Y-%m"))
    (zhejiang,) = queries.regions(c.read_db, "province", *months, limit=10)
    assert zhejiang == {
        "province": "浙江省",
        "new_customers": 2,
        "orders": 2,
        "gmv": 130_000,
        "refunded": 20_000,
        "tickets": 1,
    }
    assert queries.regions(c.read_db, "city", *months, limit=10)[0]["city"] == "杭州市"
    (cost,) = queries.promotions(c.read_db, "region", *months, limit=10)
    assert (cost["region"], cost["coupons_redeemed"], cost["discount"]) == ("浙江省", 1, 5_000)
    issuers = {i["issuer"]: i for i in queries.coupons(c.read_db, "issuer", *months)}
    assert (issuers["campaign"]["redeemed"], issuers["campaign"]["redemption_rate"]) == (1, 1.0)
    assert (issuers["staff"]["issued"], issuers["staff"]["redeemed"]) == (1, 0)


def test_a_ticket_region_is_split_into_province_and_city() -> None:
    assert split_region("浙江省杭州市西湖区") == ("浙江省", "杭州市")
    assert split_region("上海市浦东新区") == ("上海市", "浦东新区")
    assert split_region("新疆维吾尔自治区乌鲁木齐市") == ("新疆维吾尔自治区", "乌鲁木齐市")
    assert split_region("杭州市") == ("杭州市", "")
    assert split_region(None) == ("", "")
