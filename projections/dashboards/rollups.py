"""The dashboards' read model: counters rolled up as events are projected, so every dashboard
answers from a few thousand small rows, never from a scan of millions (docs/dashboards.md).

- per channel code and UTC day: scans, adds (new customers), first orders, GMV;
- per member of staff and UTC day: the same, plus replies to customers and their waiting time
  (from the conversation archive: a customer's one-to-one message to the staff member's next
  message back);
- per province, city and month: new buyers (at their first paid order), paid orders, GMV,
  refunds, tickets opened;
- per province and month: what promotions cost (coupon discounts, points);
- per coupon issuer and month: coupons issued, redeemed, revoked, expired.

Attribution needs to remember a little: which code and staff member brought each customer,
which customer each platform buyer is, and each order's buyer, day and place, so a refund
lands where its order did and a buyer linked late brings their orders with them. Handlers
read only these tables of their own, so a rebuild of this read model alone equals the live
one. Amounts are fen; days and months are UTC.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from domain.conversations.aggregates import ArchivedMessage, is_external
from domain.customers.aggregates import BUYER_KINDS, ChannelCode, Customer
from domain.orders.aggregates import Order
from domain.promotions.aggregates import Coupon, Points
from domain.tickets.aggregates import Ticket
from infra.events import EventRecord
from projections.base import Counter, Projection, handles

_COUNTS = ("scans", "adds", "first_orders", "gmv")
_STAFF_COUNTS = (*_COUNTS, "replies", "reply_seconds")
_REGION_COUNTS = ("new_customers", "orders", "gmv", "refunded", "tickets")
_PROMOTION_COUNTS = ("coupons_redeemed", "discount", "points_earned", "points_spent")
_COUPON_COUNTS = ("issued", "redeemed", "revoked", "expired", "discount")

# "浙江省杭州市西湖区" -> ("浙江省", "杭州市"): tickets carry their region as written.
_REGION = re.compile(r"^(.+?(?:省|自治区|特别行政区|市))(.+?(?:市|自治州|盟|地区|区|县))?")


def split_region(text: str | None) -> tuple[str, str]:
    found = _REGION.match(text or "")
    if not found:
        return (text or "")[:40], ""
    return found.group(1), found.group(2) or ""


_CODES = Counter("dashboards_codes_daily", ("code", "day"), _COUNTS)
_STAFF = Counter("dashboards_staff_daily", ("staff", "day"), _STAFF_COUNTS)
_REGIONS = Counter("dashboards_regions_monthly", ("province", "city", "month"), _REGION_COUNTS)
_PROMOTIONS = Counter("dashboards_promotions_monthly", ("province", "month"), _PROMOTION_COUNTS)
_COUPONS = Counter("dashboards_coupons_monthly", ("issued_by", "month"), _COUPON_COUNTS)


def _bigints(columns: tuple[str, ...]) -> str:
    return ", ".join(f"{c} BIGINT NOT NULL DEFAULT 0" for c in columns)


class Dashboards(Projection):
    name = "dashboards"
    tables = (
        "dashboards_codes_daily",
        "dashboards_staff_daily",
        "dashboards_regions_monthly",
        "dashboards_promotions_monthly",
        "dashboards_coupons_monthly",
        "dashboards_customers",
        "dashboards_buyers",
        "dashboards_orders",
        "dashboards_coupons",
        "dashboards_waiting",
    )
    ddl = (
        "CREATE TABLE IF NOT EXISTS dashboards_codes_daily (code TEXT NOT NULL,"
        f" day TEXT NOT NULL, {_bigints(_COUNTS)}, PRIMARY KEY (code, day))",
        "CREATE INDEX IF NOT EXISTS dashboards_codes_daily_day ON dashboards_codes_daily (day)",
        "CREATE TABLE IF NOT EXISTS dashboards_staff_daily (staff TEXT NOT NULL,"
        f" day TEXT NOT NULL, {_bigints(_STAFF_COUNTS)}, PRIMARY KEY (staff, day))",
        "CREATE INDEX IF NOT EXISTS dashboards_staff_daily_day ON dashboards_staff_daily (day)",
        "CREATE TABLE IF NOT EXISTS dashboards_regions_monthly (province TEXT NOT NULL,"
        f" city TEXT NOT NULL, month TEXT NOT NULL, {_bigints(_REGION_COUNTS)},"
        " PRIMARY KEY (province, city, month))",
        "CREATE TABLE IF NOT EXISTS dashboards_promotions_monthly (province TEXT NOT NULL,"
        f" month TEXT NOT NULL, {_bigints(_PROMOTION_COUNTS)}, PRIMARY KEY (province, month))",
        "CREATE TABLE IF NOT EXISTS dashboards_coupons_monthly (issued_by TEXT NOT NULL,"
        f" month TEXT NOT NULL, {_bigints(_COUPON_COUNTS)}, PRIMARY KEY (issued_by, month))",
        # What attribution remembers.
        "CREATE TABLE IF NOT EXISTS dashboards_customers (customer_id TEXT PRIMARY KEY,"
        " code TEXT, staff TEXT, province TEXT, city TEXT, first_order_day TEXT)",
        "CREATE TABLE IF NOT EXISTS dashboards_buyers (buyer TEXT PRIMARY KEY,"
        " customer_id TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS dashboards_orders (order_id TEXT PRIMARY KEY,"
        " buyer TEXT NOT NULL, customer_id TEXT, province TEXT NOT NULL, city TEXT NOT NULL,"
        " paid_day TEXT, paid BIGINT NOT NULL DEFAULT 0, refunded BIGINT NOT NULL DEFAULT 0)",
        "CREATE INDEX IF NOT EXISTS dashboards_orders_buyer ON dashboards_orders (buyer)",
        "CREATE TABLE IF NOT EXISTS dashboards_coupons (code TEXT PRIMARY KEY,"
        " issued_by TEXT NOT NULL, province TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS dashboards_waiting (external TEXT NOT NULL,"
        " staff TEXT NOT NULL, since TEXT NOT NULL, PRIMARY KEY (external, staff))",
    )

    def __init__(self) -> None:
        super().__init__()  # the counter tables are tallies, written once per batch
        # Who waits for whom, as this batch has read or written it (None: no one waits): a
        # reply mostly follows its question within a batch, and asking the table each time
        # was most of what an archived message cost. Every write goes through it.
        self.waiting: dict[tuple[str, str], str | None] = {}

    def forget(self) -> None:
        super().forget()
        self.waiting.clear()

    def flush(self, cur: Any) -> None:
        super().flush(cur)
        self.waiting.clear()

    # --- channels: scans and adds --------------------------------------------------------

    def _arrived(self, e: EventRecord, cur: Any, staff: str | None) -> None:
        d, day = e.data, e.occurred_at[:10]
        new = 1 if d["new_customer"] else 0
        self.tallies.add(_CODES, (e.originator_id, day, 1, new, 0, 0))
        if staff:
            self.tallies.add(_STAFF, (staff, day, 1, new, 0, 0, 0, 0))
        if new:
            cur.execute(
                "INSERT INTO dashboards_customers (customer_id, code, staff) VALUES (?,?,?)"
                " ON CONFLICT (customer_id) DO UPDATE SET"
                " code = COALESCE(dashboards_customers.code, excluded.code),"
                " staff = COALESCE(dashboards_customers.staff, excluded.staff)",
                (str(d["customer_id"]), e.originator_id, staff),
            )

    @handles(ChannelCode, "Scanned")
    def _scanned(self, e: EventRecord, cur: Any) -> None:
        self._arrived(e, cur, e.data["assigned_staff"])

    @handles(ChannelCode, "ContactAdded")
    def _contact_added(self, e: EventRecord, cur: Any) -> None:
        self._arrived(e, cur, e.data["staff_id"])

    @handles(ChannelCode, "OfficialAccountScanned")
    def _official_account(self, e: EventRecord, cur: Any) -> None:
        self._arrived(e, cur, None)

    # --- customers and the buyers they are -----------------------------------------------

    @handles(Customer, "Added")
    def _customer(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        code = d.get("source_channel_code")
        cur.execute(
            "INSERT INTO dashboards_customers (customer_id, code, staff) VALUES (?,?,?)"
            " ON CONFLICT (customer_id) DO NOTHING",
            (e.originator_id, str(code) if code else None, d.get("owner")),
        )
        for identity in d.get("identities") or []:
            self._link(e, cur, identity["kind"], identity["value"])

    @handles(Customer, "IdentityAdded", "IdentityLinked")
    def _identity(self, e: EventRecord, cur: Any) -> None:
        self._link(e, cur, e.data["kind"], e.data["value"])

    def _link(self, e: EventRecord, cur: Any, kind: str, value: str) -> None:
        """A platform buyer known to be this customer: their paid orders so far count for
        the customer's code and staff member from now on, the earliest as the first order."""
        if kind not in BUYER_KINDS:
            return
        buyer, customer = f"{kind}:{value}", e.originator_id
        cur.execute(
            "INSERT INTO dashboards_buyers (buyer, customer_id) VALUES (?,?)"
            " ON CONFLICT (buyer) DO NOTHING",
            (buyer, customer),
        )
        cur.execute(
            "SELECT order_id, paid_day, paid - refunded, province, city FROM dashboards_orders"
            " WHERE buyer = ? AND customer_id IS NULL AND paid_day IS NOT NULL"
            " ORDER BY paid_day, order_id",
            (buyer,),
        )
        for order_id, day, worth, province, city in cur.fetchall():
            cur.execute(
                "UPDATE dashboards_orders SET customer_id = ? WHERE order_id = ?",
                (customer, order_id),
            )
            self._attribute(cur, customer, day, int(worth), province, city)

    def _who(self, cur: Any, customer: str) -> tuple[str | None, str | None, str | None]:
        cur.execute(
            "SELECT code, staff, first_order_day FROM dashboards_customers WHERE customer_id = ?",
            (customer,),
        )
        row = cur.fetchone()
        return (row[0], row[1], row[2]) if row else (None, None, None)

    def _attribute(
        self, cur: Any, customer: str, day: str, gmv: int, province: str, city: str
    ) -> None:
        """A paid order of a known customer: GMV for their code and staff member; the first
        one is also a conversion, and places a new buyer in the order's region."""
        code, staff, first = self._who(cur, customer)
        first_order = 1 if first is None else 0
        if first_order:
            cur.execute(
                "INSERT INTO dashboards_customers (customer_id, province, city, first_order_day)"
                " VALUES (?,?,?,?) ON CONFLICT (customer_id) DO UPDATE SET"
                " province = excluded.province, city = excluded.city,"
                " first_order_day = excluded.first_order_day",
                (customer, province, city, day),
            )
            self.tallies.add(_REGIONS, (province, city, day[:7], 1, 0, 0, 0, 0))
        if code:
            self.tallies.add(_CODES, (code, day, 0, 0, first_order, gmv))
        if staff:
            self.tallies.add(_STAFF, (staff, day, 0, 0, first_order, gmv, 0, 0))

    # --- orders --------------------------------------------------------------------------

    @handles(Order, "Placed")
    def _placed(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        buyer = f"{d['buyer']['kind']}:{d['buyer']['id']}"
        cur.execute("SELECT customer_id FROM dashboards_buyers WHERE buyer = ?", (buyer,))
        row = cur.fetchone()
        cur.execute(
            "INSERT INTO dashboards_orders (order_id, buyer, customer_id, province, city)"
            " VALUES (?,?,?,?,?) ON CONFLICT (order_id) DO NOTHING",
            (
                e.originator_id,
                buyer,
                row[0] if row else None,
                d["region"].get("province") or "",
                d["region"].get("city") or "",
            ),
        )

    def _order(self, cur: Any, order_id: str) -> tuple[str | None, str | None, str, str] | None:
        cur.execute(
            "SELECT customer_id, paid_day, province, city FROM dashboards_orders"
            " WHERE order_id = ?",
            (order_id,),
        )
        row = cur.fetchone()
        return (row[0], row[1], row[2], row[3]) if row else None

    @handles(Order, "Paid")
    def _paid(self, e: EventRecord, cur: Any) -> None:
        found = self._order(cur, e.originator_id)
        if found is None or found[1] is not None:
            return
        customer, _, province, city = found
        day, paid = e.occurred_at[:10], int(e.data["paid"])
        cur.execute(
            "UPDATE dashboards_orders SET paid_day = ?, paid = ? WHERE order_id = ?",
            (day, paid, e.originator_id),
        )
        self.tallies.add(_REGIONS, (province, city, day[:7], 0, 1, paid, 0, 0))
        if customer:
            self._attribute(cur, customer, day, paid, province, city)

    @handles(Order, "Refunded")
    def _refunded(self, e: EventRecord, cur: Any) -> None:
        """Net GMV where the order was paid: the refund is taken off that day and place."""
        found = self._order(cur, e.originator_id)
        if found is None or found[1] is None:
            return
        customer, day, province, city = found
        assert day is not None
        amount = int(e.data["amount"])
        cur.execute(
            "UPDATE dashboards_orders SET refunded = refunded + ? WHERE order_id = ?",
            (amount, e.originator_id),
        )
        self.tallies.add(_REGIONS, (province, city, day[:7], 0, 0, -amount, amount, 0))
        if customer:
            code, staff, _ = self._who(cur, customer)
            if code:
                self.tallies.add(_CODES, (code, day, 0, 0, 0, -amount))
            if staff:
                self.tallies.add(_STAFF, (staff, day, 0, 0, 0, -amount, 0, 0))

    # --- tickets, replies ----------------------------------------------------------------

    @handles(Ticket, "Opened")
    def _ticket(self, e: EventRecord, cur: Any) -> None:
        province, city = split_region(e.data.get("region"))
        self.tallies.add(_REGIONS, (province, city, e.occurred_at[:7], 0, 0, 0, 0, 1))

    @handles(ArchivedMessage, "Archived")
    def _message(self, e: EventRecord, cur: Any) -> None:
        """Waiting time: from a customer's one-to-one message to the staff member's next
        message back to them (later messages while waiting do not restart the clock)."""
        d = e.data
        if d.get("room_id") or d.get("action") not in (None, "send"):
            return
        sender, sent = d["sender"], str(d["sent_at"])
        if is_external(sender):
            for staff in d["recipients"]:
                if not is_external(staff) and self._waiting(cur, sender, staff) is None:
                    self.waiting[(sender, staff)] = sent
                    cur.execute(
                        "INSERT INTO dashboards_waiting (external, staff, since) VALUES (?,?,?)"
                        " ON CONFLICT (external, staff) DO NOTHING",
                        (sender, staff, sent),
                    )
            return
        for external in d["recipients"]:
            if not is_external(external):
                continue
            since = self._waiting(cur, external, sender)
            if since is None:
                continue
            waited = max(int(_seconds(sent) - _seconds(since)), 0)
            self.tallies.add(_STAFF, (sender, sent[:10], 0, 0, 0, 0, 1, waited))
            self.waiting[(external, sender)] = None
            cur.execute(
                "DELETE FROM dashboards_waiting WHERE external = ? AND staff = ?",
                (external, sender),
            )

    def _waiting(self, cur: Any, external: str, staff: str) -> str | None:
        key = (external, staff)
        if key not in self.waiting:
            cur.execute(
                "SELECT since FROM dashboards_waiting WHERE external = ? AND staff = ?", key
            )
            row = cur.fetchone()
            self.waiting[key] = str(row[0]) if row else None
        return self.waiting[key]

    # --- promotions ----------------------------------------------------------------------

    def _province(self, cur: Any, customer: str) -> str:
        cur.execute("SELECT province FROM dashboards_customers WHERE customer_id = ?", (customer,))
        row = cur.fetchone()
        return str(row[0]) if row and row[0] else ""

    @handles(Coupon, "Issued")
    def _issued(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO dashboards_coupons (code, issued_by, province) VALUES (?,?,?)"
            " ON CONFLICT (code) DO NOTHING",
            (d["code"], d["issued_by"], self._province(cur, d["customer_id"])),
        )
        self.tallies.add(_COUPONS, (d["issued_by"], e.occurred_at[:7], 1, 0, 0, 0, 0))

    @handles(Coupon, "Redeemed", "Revoked", "Expired")
    def _coupon(self, e: EventRecord, cur: Any) -> None:
        cur.execute(
            "SELECT issued_by, province FROM dashboards_coupons WHERE code = ?", (e.data["code"],)
        )
        row = cur.fetchone()
        if row is None:
            return
        month, discount = e.occurred_at[:7], int(e.data.get("discount") or 0)
        step = e.name.removeprefix("Coupon")
        counts = [int(step == "Redeemed"), int(step == "Revoked"), int(step == "Expired")]
        self.tallies.add(_COUPONS, (row[0], month, 0, *counts, discount))
        if step == "Redeemed":
            self.tallies.add(_PROMOTIONS, (row[1], month, 1, discount, 0, 0))

    @handles(Points, "Earned", "Spent", "ClawedBack")
    def _points(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        # A clawback takes back what was earned; spending is what the points paid for.
        earned = {"PointsEarned": d["points"], "PointsClawedBack": -d["points"]}.get(e.name, 0)
        spent = d["points"] if e.name == "PointsSpent" else 0
        province = self._province(cur, d["customer_id"])
        self.tallies.add(_PROMOTIONS, (province, e.occurred_at[:7], 0, 0, earned, spent))


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()
