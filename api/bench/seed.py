"""`scrm seed --customers N --events M`: a realistic tenant for the dashboard and automation
benchmarks (issue 8), written through the domain aggregates so that every event is one the
applications would record, and verifies like any other (`scrm audit verify`).

Deterministic for a seed: the same arguments give the same counts and the same head (ids of
tickets and the sealed bytes differ; the business facts do not). Business time
(`meta.occurred_at`) runs over `--days` ending now, one simulated day at a time, so the log is
in business-time order day by day:

- staff (~300, in seven regional departments, plus installers in the ticket cities), channel
  codes (~200, each with a pool of one department's staff), the shipped sensitive-word packs,
  the installation workflow and its templates;
- each day, that day's new customers: a scan of a channel code (`ChannelCode.scan`, routed
  round-robin) creating the `Customer` with its identity claims, some with a phone (sealed
  under the customer's data key, claimed by its keyed hash) and a platform buyer identity
  (`taobao_buyer`, ... linked as `IdentityLinked`, claimed);
- then, until the day's share of M events: orders of buyers (an `OrderSnapshot` placed and
  advanced exactly as `OrdersApp` does: placed, paid, shipped, completed, some cancelled or
  refunded; the receiver sealed), archived conversations between customers and their owners
  (`ConversationsApp.ingest`: sealed, scanned by the packs), tickets (the tickets
  benchmark's `Seeder`: `TicketsApp.prepare_ticket` and `step`), coupons (issued, redeemed
  against an order, expired or revoked) and points (earned by actions, spent).

Aggregates are saved by `save_aggregates`, up to FLUSH per transaction. No raw SQL touches the
store. The read models are brought up to date afterwards (`project`), timed apart.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import orjson

from api.bench.archive import PHRASES
from api.bench.places import CODE_KINDS, DEPARTMENTS, DISTRICTS, GIVEN, PRODUCTS, PROVINCES
from api.bench.places import SURNAMES as FAMILY
from domain.customers.aggregates import ChannelCode, Customer, IdentityClaim, Staff, Visitor
from domain.orders.application import _advance, buyer_subject
from domain.orders.model import OrderLine, OrderSnapshot, Receiver, Refund
from domain.promotions.aggregates import Coupon, Points
from domain.promotions.application import CouponSpec
from domain.shared import Meta, derived_id
from infra.bootstrap import Container

FLUSH = 1000  # aggregates per transaction
STAFF = 300
CODES = 200
FOLLOW_UP = "待回访"  # the tag `scrm bench automation-sweep` targets by default
PLATFORMS = (("taobao", 0.45), ("jd", 0.2), ("pdd", 0.15), ("douyin", 0.12), ("youzan", 0.08))
# Of the events left once customers exist: which activity makes them, by share.
MIX = (("order", 0.5), ("chat", 0.25), ("ticket", 0.1), ("coupon", 0.1), ("points", 0.05))
NEUTRAL = (
    "好的",
    "收到",
    "请问什么时候发货",
    "已经下单了",
    "谢谢",
    "安装师傅几点到",
    "发票怎么开",
    "这款有现货吗",
    "麻烦看一下物流",
    "周末可以送货吗",
)


@dataclass(frozen=True)
class SeedPlan:
    customers: int
    events: int
    seed: int = 42
    days: int = 365


@dataclass
class Person:
    id: UUID
    wecom: str
    owner: str
    place: tuple[str, str, str]
    buyer: tuple[str, str] | None  # platform, buyer id


@dataclass
class SeedResult:
    events: int = 0
    customers: int = 0
    seconds: float = 0.0
    head: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def _meta(at: datetime, actor: str, source: str) -> Meta:
    return Meta(at, actor, source, uuid4().hex, f"seed:{source}")


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    x = rng.random()
    for name, w in weighted:
        x -= w
        if x <= 0:
            return name
    return weighted[-1][0]


class Tenant:
    """One seeded tenant, built day by day (see the module's docstring)."""

    def __init__(self, c: Container, plan: SeedPlan, progress: Callable[[int], None]):
        self.c, self.plan, self.progress = c, plan, progress
        self.rng = random.Random(plan.seed)
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.start = self.now - timedelta(days=plan.days)
        self.result = SeedResult()
        self.people: list[Person] = []
        self.staff: dict[str, list[str]] = {}  # department -> staff ids
        self.codes: list[ChannelCode] = []
        self.pending: dict[str, list[Any]] = {"customers": [], "orders": [], "promotions": []}
        self.chats: list[object] = []
        self.day_end = self.now
        self.members: set[UUID] = set()  # customers with points
        self._head = 0
        self.tickets: list[Any] = []
        self.seq = 0
        cities = [(p, c) for p, cs in PROVINCES.items() for c in cs]
        # Bigger places first, so customers cluster as they do (Zipf-like weights).
        self.places = cities
        self.place_weights = [1 / (i + 5) for i in range(len(cities))]

    # --- set-up -------------------------------------------------------------------------

    def setup(self) -> None:
        from api.bench.tickets import CITIES, LIBRARY, Roster, Seeder
        from domain.tickets.templates import shipped_templates
        from projections.follower import StoreFollower
        from projections.tickets.tickets import templates_in_force

        c, rng = self.c, self.rng
        meta = _meta(self.start - timedelta(days=1), "system:seed", "cli")
        departments = list(DEPARTMENTS)
        fitters = max(len(CITIES), STAFF // 10)
        members: list[Staff] = []
        for n in range(STAFF - fitters):
            department = departments[n % len(departments)]
            staff_id = f"s.{n:04d}"
            name = rng.choice(FAMILY) + rng.choice(GIVEN) + rng.choice(("", *GIVEN))
            region = rng.choice(DEPARTMENTS[department])
            members.append(Staff.register(staff_id, name, department, region, meta))
            self.staff.setdefault(department, []).append(staff_id)
        workers: dict[str, list[str]] = {}
        departments_of: dict[str, str] = {}
        for n in range(fitters):
            city = list(CITIES)[n % len(CITIES)]
            staff_id, department = f"fitter.{n:04d}", f"svc-{list(CITIES).index(city):02d}"
            members.append(Staff.register(staff_id, f"师傅{n}", department, city, meta))
            c.customers.save_aggregates(members)  # the roster's staff first, then profiles
            members = []
            c.tickets.set_worker_profile(
                staff_id,
                regions=[city],
                service_types=["installation"],
                skills=[],
                capacity=None,
                meta=meta,
            )
            workers.setdefault(city, []).append(staff_id)
            departments_of[staff_id] = department
        for n in range(CODES):
            department = departments[n % len(departments)]
            pool = self.staff[department]
            start = rng.randrange(len(pool))
            kind = CODE_KINDS[n % len(CODE_KINDS)]
            code = ChannelCode.create(
                name=f"{department}·{kind}·{n:03d}",
                staff_pool=[pool[(start + k) % len(pool)] for k in range(min(5, len(pool)))],
                tags=[kind, department],
                welcome_message="您好，我是您的专属顾问，有任何问题随时联系我",
                expires_at=None,
                max_scans=None,
                meta=meta,
            )
            self.codes.append(code)
        c.customers.save_aggregates(self.codes)
        self.code_weights = [1 / (i + 3) for i in range(CODES)]  # a few codes bring most
        c.conversations.install_shipped_packs(meta)
        c.tickets.define_workflow(orjson.loads((LIBRARY / "installation.json").read_bytes()), meta)
        for template in shipped_templates():
            c.tickets.publish_template(template, expected_version=None, meta=meta)
        StoreFollower(c.engine, c.read_log).catch_up()  # templates_in_force reads it
        self.seeder = Seeder(
            c.tickets,
            c.tickets.workflow_definition("installation"),
            templates_in_force(c.read_db),
            Roster(workers),
            departments_of,
            [],
            self.now,
            seed=self.plan.seed,
        )
        self._advance_count()

    # --- the days -----------------------------------------------------------------------

    def run(self) -> SeedResult:
        started = time.perf_counter()
        head0 = self._head = self.c.head()
        self.setup()
        plan = self.plan
        for day in range(plan.days):
            begin = self.start + timedelta(days=day)
            self.day_end = min(begin + timedelta(days=1), self.now)
            want_customers = plan.customers * (day + 1) // plan.days
            self._new_customers(begin, want_customers - len(self.people))
            want_events = plan.events * (day + 1) // plan.days
            estimate = self.result.events
            while estimate < want_events and self.people:
                estimate += self._activity(begin)
                if sum(map(len, self.pending.values())) + len(self.tickets) >= FLUSH:
                    self._flush()
                if len(self.chats) >= FLUSH:
                    self._flush()
            self._flush()
        self.result.customers = len(self.people)
        self.result.head = self.c.head()
        self.result.events = self.result.head - head0
        self.result.seconds = time.perf_counter() - started
        return self.result

    def _when(self, begin: datetime) -> datetime:
        """A moment of the day, busier in the evening (Beijing time = UTC+8)."""
        hour = self.rng.choice((1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 12, 13, 13, 14, 14, 15))
        at = begin + timedelta(hours=hour, seconds=self.rng.randrange(3600))
        return min(at, self.now)

    def _count(self, kind: str, n: int = 1) -> None:
        self.result.counts[kind] = self.result.counts.get(kind, 0) + n

    def _new_customers(self, begin: datetime, n: int) -> None:
        """A chunk's ids first, so that their data keys (and their buyers') are made in one
        transaction (`Vault.ensure_keys`); then each customer's scan and what follows."""
        for done in range(0, n, FLUSH // 5):
            specs = [self._spec() for _ in range(min(FLUSH // 5, n - done))]
            self.c.vault.ensure_keys(
                {s[0].id for s in specs}
                | {derived_id("subject", buyer_subject(*s[0].buyer)) for s in specs if s[0].buyer}
            )
            for person, code, identities, phone in specs:
                self._customer(begin, person, code, identities, phone)
            self._flush()
        self._count("customers", n)

    def _spec(self) -> tuple[Person, ChannelCode, dict[str, str], str | None]:
        rng, seed = self.rng, self.plan.seed
        code = rng.choices(self.codes, self.code_weights)[0]
        cid = UUID(int=rng.getrandbits(128), version=4)
        number = len(self.people)
        province, city = rng.choices(self.places, self.place_weights)[0]
        place = (province, city, city.rstrip("市州") + rng.choice(DISTRICTS))
        identities = {"wecom_external_userid": f"wm{seed:02d}{number:09d}x"}
        if rng.random() < 0.5:
            identities["unionid"] = f"oU{seed:02d}{number:09d}"
        # Unique per customer (a phone is claimed once; random numbers collide by the
        # hundred thousand): the number's last nine digits are a bijection of its ordinal.
        phone = (
            f"1{rng.choice('3578')}{(number * 7_919 + seed) % 10**9:09d}"
            if rng.random() < 0.35
            else None
        )
        buyer = None
        if rng.random() < 0.45:  # a platform buyer too, matched by the unionid they share
            platform = _pick(rng, PLATFORMS)
            buyer = (platform, f"{platform[:2]}b{seed:02d}{number:09d}")
        person = Person(cid, identities["wecom_external_userid"], "", place, buyer)
        self.people.append(person)
        return person, code, identities, phone

    def _customer(
        self,
        begin: datetime,
        person: Person,
        code: ChannelCode,
        identities: dict[str, str],
        phone: str | None,
    ) -> None:
        rng, vault, cid = self.rng, self.c.vault, person.id
        at = self._when(begin)
        meta = _meta(at, "integration:wecom", "wecom")
        person.owner = code.scan(
            visitor=Visitor(identities),
            customer_id=cid,
            new_customer=True,
            returning_owner=None,
            available_staff=set(code.staff_pool),
            meta=meta,
        )
        customer = Customer(
            id=cid,
            owner=person.owner,
            source_channel_code=code.id,
            identities=[{"kind": k, "value": v} for k, v in identities.items()],
            tags=list(code.tags),
            meta=meta,
        )
        found = [
            IdentityClaim(kind=k, key=v, customer_id=cid, meta=meta) for k, v in identities.items()
        ]
        later = _meta(at + timedelta(minutes=rng.randrange(5, 600)), f"staff:{person.owner}", "api")
        if phone is not None:  # staff note the phone: sealed, claimed by its keyed hash
            customer.add_identity("phone", vault.seal(cid, phone), later)
            key = vault.blind_index("phone", phone)
            found.append(IdentityClaim(kind="phone", key=key, customer_id=cid, meta=later))
        if rng.random() < 0.02:  # staff mark a few for a call back (automation's audience)
            customer.tag([FOLLOW_UP], later)
        if person.buyer is not None:
            kind = f"{person.buyer[0]}_buyer"
            customer.link_identity(kind, person.buyer[1], "unionid", later)
            found.append(IdentityClaim(kind=kind, key=person.buyer[1], customer_id=cid, meta=later))
        self.pending["customers"] += [customer, *found]

    def _activity(self, begin: datetime) -> int:
        """One activity of the day; answers the events it will record (estimated for chats)."""
        kind = _pick(self.rng, MIX)
        person = self.people[int(len(self.people) * (1 - self.rng.random() ** 1.5)) - 1]
        if kind == "order" and person.buyer is not None:
            return self._order(person, begin)
        if kind == "ticket":
            return self._ticket(person, begin)
        if kind == "coupon":
            return self._coupon(person, begin)
        if kind == "points" and person.id not in self.members:  # one Points per customer
            self.members.add(person.id)
            return self._points(person, begin)
        return self._chat(person, begin)

    # --- activities (each is a whole life, in business time, up to now) ------------------

    def _order(self, person: Person, begin: datetime) -> int:
        rng, c = self.rng, self.c
        assert person.buyer is not None
        platform, buyer_id = person.buyer
        placed = self._when(begin)
        lines = []
        for n in range(rng.choice((1, 1, 1, 2, 2, 3))):
            sku, title, category, price = rng.choice(PRODUCTS)
            quantity = rng.choice((1, 1, 1, 2))
            off = price * quantity // rng.choice((10, 20, 50, 1000))
            lines.append(
                OrderLine(
                    f"L{n}", sku, title, quantity, price, price * quantity - off, off, category
                )
            )
        total, discount = (
            sum(x.unit_price * x.quantity for x in lines),
            sum(x.discount for x in lines),
        )
        payable = total - discount
        steps = [placed + timedelta(minutes=rng.randrange(1, 90))]
        steps.append(steps[0] + timedelta(hours=rng.randrange(4, 60)))
        steps.append(steps[1] + timedelta(days=rng.randrange(2, 9)))
        known = [t if t <= self.now else None for t in steps]
        fate = rng.random()
        status = (
            "completed" if known[2] else "shipped" if known[1] else "paid" if known[0] else "placed"
        )
        cancelled = None
        if fate < 0.07:  # closed unpaid
            status, known, cancelled = (
                "cancelled",
                [None, None, None],
                min(placed + timedelta(hours=1), self.now),
            )
        refunds: tuple[Refund, ...] = ()
        if fate > 0.95 and known[0]:
            when = min(known[0] + timedelta(days=rng.randrange(1, 10)), self.now)
            refunds = (Refund(f"R{rng.getrandbits(40)}", lines[0].paid, "L0", when),)
        province, city, district = person.place
        name = rng.choice(FAMILY) + rng.choice(GIVEN)
        phone = f"1{rng.choice('3578')}{rng.randrange(10**9):09d}"
        snap = OrderSnapshot(
            platform=platform,
            trade_id=f"{self.plan.seed:02d}{rng.getrandbits(52)}",
            shop_id=f"{platform}-flagship",
            buyer_id=buyer_id,
            status=status,
            placed_at=placed,
            lines=tuple(lines),
            total=total,
            discount=discount,
            freight=0,
            payable=payable,
            paid_at=known[0],
            shipped_at=known[1],
            completed_at=known[2],
            cancelled_at=cancelled,
            cancel_reason="买家未付款，交易关闭" if cancelled else None,
            receiver=Receiver(
                name, phone, f"{district}幸福路{rng.randrange(1, 999)}号", province, city, district
            ),
            refunds=refunds,
            carrier="SF" if known[1] else None,
            tracking_no=f"SF{rng.getrandbits(40)}" if known[1] else None,
        )
        meta = _meta(placed, f"integration:{platform}", platform)
        phone_key = c.vault.blind_index("phone", phone)
        order = c.orders._place(snap, meta, phone_key)  # what OrdersApp.receive decides
        _advance(order, dataclasses.replace(snap), meta)
        self.pending["orders"].append(order)
        self._count("orders")
        return len(order.pending_events)

    def _chat(self, person: Person, begin: datetime) -> int:
        rng = self.rng
        at = self._when(begin)
        n = rng.randrange(2, 7)
        for k in range(n):
            self.seq += 1
            inbound = k % 2 == 0
            risky = rng.random() < 0.04
            text = rng.choice(PHRASES) if risky else rng.choice(NEUTRAL)
            sent = at + timedelta(seconds=30 * k + rng.randrange(30))
            self.chats.append(
                {
                    "seq": self.seq,
                    "msgid": f"seed{self.plan.seed}-{self.seq}",
                    "action": "send",
                    "from": person.wecom if inbound else person.owner,
                    "tolist": [person.owner if inbound else person.wecom],
                    "roomid": "",
                    "msgtime": int(min(sent, self.now).timestamp() * 1000),
                    "msgtype": "text",
                    "text": {"content": text},
                }
            )
        self._count("messages", n)
        return n + n // 10

    def _ticket(self, person: Person, begin: datetime) -> int:
        self.seeder.customers = [person.id]
        self.seeder.now = min(begin + timedelta(days=30), self.now)
        ticket = self.seeder.one()
        self.tickets.append(ticket)
        self._count("tickets")
        return len(ticket.pending_events)

    def _coupon(self, person: Person, begin: datetime) -> int:
        rng = self.rng
        at = self._when(begin)
        if rng.random() < 0.6:
            spec = CouponSpec.parse(
                "amount_off",
                rng.choice((1000, 2000, 5000, 10000)),
                20000,
                at,
                at + timedelta(days=30),
            )
        else:
            spec = CouponSpec.parse(
                "percent_off", rng.choice(("0.9", "0.85", "0.8")), 0, at, at + timedelta(days=14)
            )
        issuer = rng.choice(
            (
                ("campaign", "双十一"),
                ("campaign", "618"),
                ("rule", "birthday"),
                ("staff", person.owner),
            )
        )
        meta = _meta(
            at, f"staff:{person.owner}" if issuer[0] == "staff" else "system:promotions", "api"
        )
        coupon = Coupon(
            code=f"S{self.plan.seed}-{self.result.counts.get('coupons', 0):08d}",
            customer_id=str(person.id),
            kind=spec.kind,
            value=spec.value,
            min_spend=spec.min_spend,
            valid_from=spec.valid_from,
            expires_at=spec.expires_at,
            issued_by=issuer[0],
            issuer_ref=issuer[1],
            meta=meta,
        )
        fate = rng.random()
        used = at + timedelta(days=rng.randrange(0, 10), hours=rng.randrange(24))
        if fate < 0.45 and used < min(spec.expires_at, self.now):
            total = rng.choice(PRODUCTS)[3]
            coupon.redeem(
                f"POS-{rng.getrandbits(40)}",
                max(total, spec.min_spend),
                used,
                _meta(used, "system:pos", "api"),
            )
        elif fate < 0.48 and used < min(spec.expires_at, self.now):
            coupon.revoke("发放错误", used, _meta(used, f"staff:{person.owner}", "api"))
        elif spec.expires_at <= self.now:
            coupon.expire(spec.expires_at, _meta(spec.expires_at, "system:expiry", "scheduler"))
        self.pending["promotions"].append(coupon)
        self._count("coupons")
        return len(coupon.pending_events)

    def _points(self, person: Person, begin: datetime) -> int:
        rng = self.rng
        at = self._when(begin)
        points = Points(customer_id=str(person.id), meta=_meta(at, "system:loyalty", "api"))
        for n in range(rng.randrange(1, 6)):
            at = min(at + timedelta(days=rng.randrange(1, 30)), self.now)
            reason = rng.choice(("checkin", "review", "share"))
            points.earn(
                rng.choice((10, 20, 50, 100)),
                reason,
                f"{reason}:{person.id}:{n}",
                _meta(at, "system:loyalty", "api"),
            )
        if points.balance >= 100 and rng.random() < 0.3:
            at = min(at + timedelta(days=1), self.now)
            points.spend(100, "coupon", f"spend:{person.id}", _meta(at, f"user:{person.id}", "api"))
        self.pending["promotions"].append(points)
        self._count("points")
        return len(points.pending_events)

    # --- saving -------------------------------------------------------------------------

    def _flush(self) -> None:
        c = self.c
        if self.pending["customers"]:
            # The customers first, then the codes that were scanned (as a scan saves them).
            c.customers.save_aggregates([*self.pending["customers"], *self.codes])
        if self.pending["orders"]:
            c.orders.save_aggregates(self.pending["orders"])
        if self.tickets:
            c.tickets.save_aggregates(self.tickets)
        if self.pending["promotions"]:
            c.promotions.save_aggregates(self.pending["promotions"])
        for start in range(0, len(self.chats), 2000):
            c.conversations.ingest(
                self.chats[start : start + 2000],
                _meta(self.day_end, "system:archive-pull", "msgaudit"),
            )
        self.pending = {k: [] for k in self.pending}
        self.chats, self.tickets = [], []
        self._advance_count()

    def _advance_count(self) -> None:
        head = self.c.head()
        self.result.events += head - self._head
        self.progress(head - self._head)
        self._head = head
