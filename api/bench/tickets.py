"""`scrm tickets bench`: work orders (issue 5) with a large store — transitions per second
through the API, and the board query's latency, each beside a raw baseline measured in the
same run on the same PostgreSQL server.

It is a measurement, never a timed test: it prints what it saw. Everything happens in a
scratch database (`scrm_bench_<hex>`, dropped at the end); no NATS stream is used. The API is
the real app (`python -m api.bench HOST PORT`: one uvicorn process over a server-mode
container), so it follows no log in-process; this process keeps the tickets read model
current itself, between the phases, exactly as `scrm project` / the embedded follower do
(`engine.apply_batch`, one transaction per batch of the log). The scheduler is off in the
API (`SCRM_SCHEDULER_INTERVAL_SECONDS=0`): its SLA sweep over the seeded backlog would be
work of its own in the middle of the measurement.

T1 Seeding: `events` ticket events through the domain — `TicketsApp.prepare_ticket` (the
   checks, the template match, least-open assignment over an in-memory mirror of the roster,
   the description sealed under the customer's key) and `TicketsApp.step` /
   `TicketsApp.issue_code` (the same decisions `POST /v1/tickets/{id}/transitions` and
   `.../confirmation-codes` make: roles, forms validated, personal values sealed, the
   confirmation code checked, the completion facts), SLA breaches recorded by
   `Ticket.breach_sla` where the simulated time passes a deadline (as the scheduler would),
   comments and ratings; `BATCH` tickets saved per transaction by `save_aggregates`. Each
   ticket lives a simulated life in business time (opened 0-90 days ago; the states mix:
   open ~21 % — assigned, scheduled, on site, a few unassigned in a region nobody serves —
   completed ~45 %, closed ~22 %, cancelled ~11 %). Beside: psycopg `executemany` of rows of
   the same width (the average stored event's state, topic and ids) into a plain table with
   the events table's unique key, the same rows per transaction.
T2 Projection: the tickets read model brought up to date from the log (`read_log` batches of
   1,000, `engine.apply_batch(only=["tickets"])`), beside the same raw insert rate. Beside it,
   a stand-in for autovacuum with PostgreSQL's default thresholds (it is off on some servers,
   this one among them), its time not counted; then `VACUUM (ANALYZE)` of the tickets tables.
   Every event rewrites its ticket's board row: without vacuuming, the board table would be
   ~7 dead versions per live row and several times the size a live system's is.
T3/T4 Transitions over HTTP: `clients` threads, each an httpx client with keep-alive, POST
   `/v1/tickets/{id}/transitions` as the ticket's assignee (a staff token), `schedule` for
   tickets the read model shows `assigned`, `arrive` for those it shows `scheduled`, each on a
   distinct ticket with `expected_version` as the read model shows it. One request in
   DUPLICATE_EVERY is sent again a moment later by another client (a second dispatcher
   dragging the same card from the same version): exactly one of the two must be 409
   `stale_version`. 409s are counted apart and left out of the rate and the latencies.
   Beside: psycopg single-row INSERT transactions over as many connections.
T5/T6 Board: `GET /v1/tickets` with varied filters (state, assignee, region, open), as a
   manager (their department's tickets) and as a staff member (their own), after the read
   model has caught up with the transitions; the slowest filter combinations are noted,
   and the same mix sent one request at a time (its cost without queueing).
   Beside: the same number of indexed SELECTs straight through psycopg on a plain copy of the
   board's table (same rows, same width; a fresh copy, so packed tighter than the read model,
   whose rows were rewritten once per event): `WHERE assignee = %s ORDER BY position LIMIT
   101`, as many connections. `GET /healthz` through the same clients is noted as the HTTP
   floor, and the CPU each process spent per request.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4, uuid5

import httpx
import orjson
import psycopg
from rich.console import Console
from rich.table import Table

from api.bench import cpu
from api.bench.baselines import insert_baseline
from api.bench.commands import HOST, _free_port
from api.bench.processes import Processes
from api.bench.scratch import DEFAULT_NATS, Scratch, admin_url, pg_problem
from api.bench.table import Report, Row, fmt_lat3, fmt_lat_ratio, fmt_rate, fmt_ratio, percentile
from domain.scope import Scope
from domain.shared import Meta
from domain.tickets.application import OpenTicket
from domain.tickets.assignment import Candidate
from infra.settings import Settings

if TYPE_CHECKING:
    from domain.tickets.aggregates import Ticket, WorkflowDefinition
    from domain.tickets.application import TicketsApp
    from infra.bootstrap import Container

BATCH = 500  # tickets per save_aggregates transaction
LOG_BATCH = 1_000  # log records per projection transaction
AUTOVACUUM_EVERY = 10  # projection batches between the autovacuum stand-in's looks
DUPLICATE_EVERY = 50  # one transition request in this many is sent twice
ROW_IDS = ["T1", "T2", "T3", "T4", "T5", "T6"]
LIBRARY = Path(__file__).resolve().parents[2] / "domain" / "tickets" / "library"

# Cities served (one department of installers each) and their districts; one more region
# nobody serves, whose tickets wait unassigned on the board.
CITIES: dict[str, tuple[str, ...]] = {
    "杭州市": ("浙江省杭州市西湖区", "浙江省杭州市上城区", "浙江省杭州市滨江区"),
    "宁波市": ("浙江省宁波市海曙区", "浙江省宁波市鄞州区"),
    "上海市": ("上海市浦东新区", "上海市徐汇区", "上海市闵行区"),
    "南京市": ("江苏省南京市鼓楼区", "江苏省南京市江宁区"),
    "苏州市": ("江苏省苏州市姑苏区", "江苏省苏州市吴中区"),
    "广州市": ("广东省广州市天河区", "广东省广州市海珠区"),
    "深圳市": ("广东省深圳市南山区", "广东省深圳市福田区"),
    "成都市": ("四川省成都市武侯区", "四川省成都市锦江区"),
    "武汉市": ("湖北省武汉市洪山区", "湖北省武汉市江汉区"),
    "北京市": ("北京市朝阳区", "北京市海淀区"),
    "西安市": ("陕西省西安市雁塔区", "陕西省西安市未央区"),
    "重庆市": ("重庆市渝北区", "重庆市江北区"),
}
UNSERVED = "西藏自治区拉萨市城关区"
# (product, description): each matches one of the shipped installation templates.
JOBS = (
    ("美的 1.5匹 挂机", "新买的空调挂机，周末上门安装，需要打孔"),
    ("格力 3匹 柜机", "柜机安装，外机放阳台"),
    ("海尔 60升 电热水器", "电热水器安装挂墙，卫生间"),
    ("方太 油烟机", "油烟机安装，需要开孔"),
    ("小天鹅 洗衣机", "洗衣机安装，拆运输螺栓"),
    ("德施曼 指纹锁", "智能锁安装，换锁，防盗门"),
)
URGENCY = (("normal", 0.85), ("urgent", 0.13), ("emergency", 0.02))
# Final state of a ticket in a served region, by share.
FATES = (
    ("assigned", 0.08),
    ("scheduled", 0.10),
    ("on_site", 0.03),
    ("completed", 0.46),
    ("closed", 0.22),
    ("cancelled", 0.11),
)
UNSERVED_SHARE = 0.02  # half stay new, half are cancelled from new
COMMENT_SHARE = 0.10
RATED_SHARE = 0.5
STATES = ("new", "assigned", "scheduled", "on_site", "completed", "closed", "cancelled")


@dataclass(frozen=True)
class TicketsPlan:
    events: int = 1_000_000
    workers: int = 240  # installers, spread over the cities (one department each)
    customers: int = 50_000  # whose keys seal the tickets' personal data
    clients: int = 8  # requests in flight (threads with a keep-alive client each)
    warmup: float = 3.0
    transition_seconds: float = 30.0
    board_queries: int = 3_000  # per role
    board_warmup: int = 100  # per role, not measured
    board_alone: int = 300  # per role, one request in flight (noted)
    insert_seconds: float = 8.0  # the single-row INSERT baseline (api.bench.baselines)
    baseline_rows_max: int = 300_000  # raw executemany baseline: at most this many rows
    startup_timeout: float = 120.0


FULL = TicketsPlan()
QUICK = TicketsPlan(
    events=6_000,
    workers=24,
    customers=500,
    clients=4,
    warmup=0.5,
    transition_seconds=3.0,
    board_queries=150,
    board_warmup=10,
    board_alone=20,
    insert_seconds=2.0,
    baseline_rows_max=6_000,
)


def _meta(at: datetime, actor: str, source: str = "api") -> Meta:
    return Meta(
        occurred_at=at,
        actor=actor,
        source=source,
        correlation_id=uuid4().hex,
        causation_id=f"bench:tickets:{uuid4().hex[:12]}",
    )


def _pick(rng: random.Random, weighted: Sequence[tuple[str, float]]) -> str:
    x = rng.random() * sum(w for _, w in weighted)
    for name, w in weighted:
        x -= w
        if x <= 0:
            return name
    return weighted[-1][0]


@dataclass
class Figures:
    """What a run measured, also written as JSON (`--json`) for the smoke test."""

    values: dict[str, Any] = field(default_factory=dict)

    def __setitem__(self, key: str, value: Any) -> None:
        self.values[key] = value


class Roster:
    """An in-memory mirror of `projections.tickets.tickets.roster` for the seeding: the
    workers serving a region, their open tickets and when each was last assigned."""

    def __init__(self, workers_by_city: dict[str, list[str]]):
        self.by_city = workers_by_city
        self.open: Counter[str] = Counter()
        self.last: dict[str, int] = {}
        self.clock = 0

    def __call__(self, region: str, service_type: str, skill: str | None) -> list[Candidate]:
        out: list[Candidate] = []
        for city, staff in self.by_city.items():
            if city in region:
                out.extend(Candidate(s, self.open[s], self.last.get(s, 0)) for s in staff)
        return out

    def assigned(self, staff_id: str) -> None:
        self.clock += 1
        self.last[staff_id] = self.clock


class Seeder:
    """Tickets living simulated lives through the domain, saved BATCH per transaction."""

    def __init__(
        self,
        app: TicketsApp,
        definition: WorkflowDefinition,
        templates: list[tuple[int, dict[str, Any]]],
        roster: Roster,
        departments: dict[str, str],
        customers: list[UUID],
        now: datetime,
        seed: int = 5,
    ):
        self.app = app
        self.definition = definition
        self.flow = app.workflow(definition.key, definition.current_version)
        self.templates = templates
        self.roster = roster
        self.departments = departments  # staff id -> department
        self.customers = customers
        self.now = now
        self.rng = random.Random(seed)
        self.fates: Counter[str] = Counter()
        self.breaches = 0
        self.build_seconds = 0.0
        self.save_seconds = 0.0
        self.keys_seconds = 0.0

    # --- one ticket --------------------------------------------------------------------

    def _gap(self, low_minutes: float, high_minutes: float) -> timedelta:
        return timedelta(minutes=self.rng.uniform(low_minutes, high_minutes))

    def _breach_due(self, ticket: Ticket, before: datetime) -> None:
        """What the scheduler would have recorded by `before`: the current state's breach,
        a few minutes after its deadline (its sweep's interval)."""
        if ticket.deadline is None or ticket.final:
            return
        at = ticket.deadline + self._gap(0.5, 5)
        if at >= before:
            return
        escalate = self.flow.state(ticket.state).escalate_to
        if ticket.breach_sla(at, escalate, _meta(at, "system:sla", "scheduler")):
            self.breaches += 1

    def _step(
        self,
        ticket: Ticket,
        name: str,
        at: datetime,
        scope: Scope,
        form: dict[str, Any],
        code: str | None = None,
    ) -> None:
        self._breach_due(ticket, at)
        self.app.step(
            ticket,
            name,
            form=form,
            confirmation_code=code,
            scope=scope,
            meta=_meta(at, scope.actor),
        )

    def one(self) -> Ticket:
        rng = self.rng
        unserved = rng.random() < UNSERVED_SHARE
        if unserved:
            fate = "new" if rng.random() < 0.5 else "cancelled_new"
            region = UNSERVED
        else:
            fate = _pick(rng, FATES)
            city = rng.choice(list(CITIES))
            region = rng.choice(CITIES[city])
        # The life's length, then when it began: open tickets recently, finished ones
        # ended at least a day ago.
        gaps = {
            "schedule": self._gap(10, 360),
            "arrive": self._gap(240, 3 * 1440),
            "complete": self._gap(30, 240),
            "close": self._gap(60, 3 * 1440),
            "rate": self._gap(60, 2 * 1440),
            "cancel": self._gap(10, 2 * 1440),
        }
        cancel_early = rng.random() < 0.5  # a cancelled job: before or after its scheduling
        span = {
            "new": timedelta(0),
            "cancelled_new": gaps["cancel"],
            "assigned": timedelta(0),
            "scheduled": gaps["schedule"],
            "on_site": gaps["schedule"] + gaps["arrive"],
            "completed": gaps["schedule"] + gaps["arrive"] + gaps["complete"],
            "closed": gaps["schedule"] + gaps["arrive"] + gaps["complete"] + gaps["close"],
            "cancelled": gaps["cancel"] if cancel_early else gaps["schedule"],
        }[fate]
        final = fate in ("completed", "closed", "cancelled", "cancelled_new")
        idle = self._gap(1440, 90 * 1440) if final else self._gap(5, 36 * 60)
        opened_at = self.now - idle - span
        product, description = rng.choice(JOBS)
        customer = rng.choice(self.customers)
        ticket = self.app.prepare_ticket(
            OpenTicket(
                workflow=self.flow.key,
                service_type="installation",
                region=region,
                description=description,
                customer_id=customer,
                product=product,
                urgency=_pick(rng, URGENCY),
            ),
            roster=self.roster,
            templates=self.templates,
            meta=_meta(opened_at, f"staff:desk.{rng.randrange(20):02d}"),
            definition=self.definition,
        )
        assignee = ticket.assignee
        if assignee is not None:
            self.roster.assigned(assignee)
        at = opened_at
        if rng.random() < COMMENT_SHARE:
            at += self._gap(1, 30)
            ticket.comment(
                self.app.vault.seal(customer, "客户来电确认上门时间，请提前联系"),
                _meta(at, f"staff:{assignee}" if assignee else "staff:desk.00"),
            )
        manager = Scope("manager", department=self.departments.get(assignee or "", "svc-00"))
        if fate in ("new", "cancelled_new"):
            if fate == "cancelled_new":
                at += gaps["cancel"]
                self._step(ticket, "cancel", at, manager, {"reason": "no_stock"})
        elif fate != "assigned":
            assert assignee is not None, "a served region has workers"
            fitter = Scope("staff", staff_id=assignee)
            if fate == "cancelled" and cancel_early:
                at += gaps["cancel"]
                self._step(ticket, "cancel", at, manager, {"reason": "customer_request"})
            else:
                at += gaps["schedule"]
                visit = (at + timedelta(days=rng.randrange(1, 5))).date().isoformat()
                self._step(ticket, "schedule", at, fitter, {"visit_on": visit})
                if fate == "cancelled":
                    at += timedelta(minutes=1)
                    self._step(ticket, "cancel", at, manager, {"reason": "customer_request"})
            if fate in ("on_site", "completed", "closed"):
                at += gaps["arrive"]
                photo = f"media:arrive-{rng.randrange(10**9):09d}"
                self._step(ticket, "arrive", at, fitter, {"arrival_photo": photo})
            if fate in ("completed", "closed"):
                issued = at + timedelta(minutes=5)
                self._breach_due(ticket, issued)
                code, _ = self.app.issue_code(ticket, _meta(issued, "staff:desk.00"))
                at += gaps["complete"]
                form = {
                    "serial_no": f"KFR-{rng.randrange(10**8):08d}",
                    "distance_km": round(rng.uniform(0, 60), 1),
                    "materials": rng.choice(("none", "installer", "customer")),
                    "materials_fee": rng.choice((0, 0, 3000, 8000)),
                    "photos": [f"media:done-{rng.randrange(10**9):09d}"],
                    "signature": f"media:sign-{rng.randrange(10**9):09d}",
                }
                self._step(ticket, "complete", at, fitter, form, code)
                if rng.random() < RATED_SHARE:
                    rated = at + gaps["rate"]
                    ticket.rate(rng.choice((5, 5, 5, 4, 4, 3)), None, _meta(rated, "customer"))
                    at = max(at, rated)
            if fate == "closed":
                at += gaps["close"]
                self._step(ticket, "close", at, manager, {})
        if not ticket.final:
            self._breach_due(ticket, self.now)
            if assignee is not None:
                self.roster.open[assignee] += 1
        self.fates[ticket.state] += 1
        return ticket

    # --- batches -----------------------------------------------------------------------

    def run(self, events: int, say: Callable[[str], None]) -> tuple[int, int]:
        """Seed until `events` ticket events are stored; returns (tickets, events)."""
        tickets = stored = 0
        next_report = time.perf_counter() + 15
        while stored < events:
            started = time.perf_counter()
            # Every customer's key at once (one round trip), as the bulk commands do.
            chosen = self.rng.sample(self.customers, min(BATCH, len(self.customers)))
            self.app.vault.ensure_keys(set(chosen))
            self.keys_seconds += time.perf_counter() - started
            built = time.perf_counter()
            batch: list[Ticket] = []
            count = 0
            saved_customers = self.customers
            self.customers = chosen  # this batch's tickets are theirs
            try:
                while len(batch) < BATCH and stored + count < events:
                    ticket = self.one()
                    if stored + count + ticket.version > events and batch:
                        # Keep the log at `events`: this ticket's life would overshoot.
                        self.fates[ticket.state] -= 1
                        break
                    batch.append(ticket)
                    count += ticket.version  # a new aggregate's version = its events
            finally:
                self.customers = saved_customers
            self.build_seconds += time.perf_counter() - built
            saving = time.perf_counter()
            self.app.save_aggregates(batch)
            self.save_seconds += time.perf_counter() - saving
            tickets += len(batch)
            stored += count
            if time.perf_counter() > next_report:
                say(f"  seeded {stored:,} of {events:,} events ({tickets:,} tickets)")
                next_report = time.perf_counter() + 15
            if len(batch) < BATCH and stored < events and count == 0:
                break  # nothing fits any more
        return tickets, stored


# --- HTTP load ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    kind: str
    method: str
    path: str
    token: str
    params: dict[str, str] | None = None
    body: dict[str, Any] | None = None


@dataclass
class Sample:
    index: int  # of the request in the list driven
    kind: str
    start: float
    end: float
    status: int  # 0: no answer (a transport error)
    error: str = ""


def drive(
    base: str,
    clients: int,
    requests: Sequence[Request],
    *,
    warmup: float = 0.0,
    seconds: float = math.inf,
) -> tuple[list[Sample], float, float]:
    """Send `requests` in order from `clients` threads, each with its own keep-alive client,
    until they run out or `warmup + seconds` has passed. Returns every sample and the
    measured window (start, end): from `warmup` after the start to the end of the time, or
    the last answer if the requests ran out first."""
    lock = threading.Lock()
    cursor = [0]
    samples: list[list[Sample]] = [[] for _ in range(clients)]
    barrier = threading.Barrier(clients + 1, timeout=60)
    stop_at = [math.inf]

    def worker(t: int) -> None:
        out = samples[t]
        with httpx.Client(base_url=base, timeout=60.0, trust_env=False) as client:
            barrier.wait()
            while True:
                with lock:
                    i = cursor[0]
                    cursor[0] += 1
                if i >= len(requests) or time.perf_counter() >= stop_at[0]:
                    return
                r = requests[i]
                headers = {"Authorization": f"Bearer {r.token}"}
                t0 = time.perf_counter()
                try:
                    answer = client.request(
                        r.method, r.path, params=r.params, json=r.body, headers=headers
                    )
                    status, error = answer.status_code, ""
                    if status >= 400:
                        with contextlib.suppress(ValueError):
                            error = str(answer.json().get("error", ""))
                except httpx.HTTPError as exc:
                    status, error = 0, type(exc).__name__
                out.append(Sample(i, r.kind, t0, time.perf_counter(), status, error))

    pool = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(clients)]
    for th in pool:
        th.start()
    started = time.perf_counter()
    stop_at[0] = started + warmup + seconds
    barrier.wait()
    for th in pool:
        th.join()
    flat = sorted((s for part in samples for s in part), key=lambda s: s.start)
    end = min(stop_at[0], max((s.end for s in flat), default=started))
    return flat, started + warmup, end


def _in_window(samples: list[Sample], start: float, end: float) -> list[Sample]:
    return [s for s in samples if s.start >= start and s.end <= end]


def _latencies(samples: list[Sample], status: int = 200) -> list[float]:
    return [s.end - s.start for s in samples if s.status == status]


# --- raw baselines --------------------------------------------------------------------------


def _events_table(c: Container) -> str:
    recorder: Any = c.tickets.recorder
    return str(recorder.events_table_name)


def _event_width(c: Container, db_url: str) -> tuple[int, int]:
    """The average stored ticket event: (state bytes, topic characters)."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            f"SELECT avg(octet_length(state)), avg(length(topic)) FROM {_events_table(c)}"
            " WHERE topic LIKE %s",
            ("domain.tickets.%",),
        ).fetchone()
    if row is None or row[0] is None:
        return 400, 40
    return int(float(row[0])), int(float(row[1]))


def raw_insert_rate(db_url: str, rows: int, per_tx: int, width: tuple[int, int]) -> float:
    """Rows/s: psycopg executemany, `per_tx` rows per transaction, rows as wide as a stored
    event, into a plain table with the events table's unique (originator, version) key."""
    state_len, topic_len = width
    state = b"x" * state_len
    topic = ("domain.tickets.aggregates:Ticket." + "x" * topic_len)[:topic_len]
    data = []
    originator = uuid4()
    for i in range(rows):
        if i % 7 == 0:
            originator = uuid4()
        data.append((originator, i % 7 + 1, topic, state))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench_tickets_raw_events (id BIGSERIAL PRIMARY KEY,"
            " originator_id UUID NOT NULL, originator_version BIGINT NOT NULL,"
            " topic TEXT NOT NULL, state BYTEA NOT NULL,"
            " UNIQUE (originator_id, originator_version))"
        )
        started = time.perf_counter()
        for start in range(0, rows, per_tx):
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO bench_tickets_raw_events"
                    " (originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)",
                    data[start : start + per_tx],
                )
        took = time.perf_counter() - started
        conn.execute("DROP TABLE bench_tickets_raw_events")
    return rows / took


def raw_select(db_url: str, clients: int, assignees: list[str], queries: int) -> list[float]:
    """Latencies of `queries` indexed SELECTs on a plain copy of the board's table (same rows,
    same width), from `clients` connections: `WHERE assignee = %s ORDER BY position LIMIT
    101`, the board's page plus one."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_tickets_raw_board AS SELECT * FROM tickets_tickets")
        conn.execute(
            "CREATE INDEX bench_tickets_raw_board_assignee"
            " ON bench_tickets_raw_board (assignee, position)"
        )
        conn.execute("ANALYZE bench_tickets_raw_board")
    rng = random.Random(7)
    chosen = [rng.choice(assignees) for _ in range(queries)]
    lock = threading.Lock()
    cursor = [0]
    out: list[list[float]] = [[] for _ in range(clients)]

    def worker(t: int) -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            while True:
                with lock:
                    i = cursor[0]
                    cursor[0] += 1
                if i >= len(chosen):
                    return
                t0 = time.perf_counter()
                conn.execute(
                    "SELECT * FROM bench_tickets_raw_board WHERE assignee = %s"
                    " ORDER BY position LIMIT 101",
                    (chosen[i],),
                ).fetchall()
                out[t].append(time.perf_counter() - t0)

    pool = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(clients)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP TABLE bench_tickets_raw_board")
    return [x for part in out for x in part]


# --- the run ------------------------------------------------------------------------------


class TicketsBench:
    def __init__(self, plan: TicketsPlan, admin: str, err: Console):
        self.plan = plan
        self.err = err
        self.report = Report()
        self.figures = Figures()
        # No stream is made: the API runs in server mode (no in-process follower) and this
        # process keeps the tickets read model current between the phases.
        self.scratch = Scratch(admin, DEFAULT_NATS)
        env = dict(self.scratch.env, SCRM_SCHEDULER_INTERVAL_SECONDS="0")
        self.procs = Processes(self.scratch.tmp, env, self.report.notes, err)
        self.workers: dict[str, list[str]] = {}  # city -> staff ids
        self.departments: dict[str, str] = {}  # staff id -> department
        self.regions: dict[str, tuple[str, ...]] = {}  # department -> its districts
        self.vacuumed: list[tuple[int, float]] = []  # (dead rows, seconds) per vacuum
        self.autovacuums: dict[str, int] = {}  # table -> VACUUMs by the autovacuum stand-in
        self.autovacuum_seconds = 0.0

    @property
    def c(self) -> Container:
        assert self.scratch.container is not None
        return self.scratch.container

    def say(self, text: str) -> None:
        self.err.print(f"[dim]bench tickets[/dim] {text}")

    # --- set-up ----------------------------------------------------------------------

    def setup(self) -> None:
        self.scratch.create_database()
        self.say(f"scratch database {self.scratch.db_name}")
        c = self.scratch.bootstrap()
        now = datetime.now(UTC)
        meta = _meta(now, "system:bench", "cli")
        cities = list(CITIES)
        for n in range(self.plan.workers):
            city = cities[n % len(cities)]
            department = f"svc-{cities.index(city):02d}"
            staff_id = f"fitter.{n:04d}"
            c.customers.register_staff(
                staff_id=staff_id, name=f"师傅{n}", department=department, region=city, meta=meta
            )
            c.tickets.set_worker_profile(
                staff_id,
                regions=[city],
                service_types=["installation"],
                skills=[],
                capacity=None,
                meta=meta,
            )
            self.workers.setdefault(city, []).append(staff_id)
            self.departments[staff_id] = department
            self.regions[department] = CITIES[city]
        from domain.tickets.templates import shipped_templates

        c.tickets.define_workflow(orjson.loads((LIBRARY / "installation.json").read_bytes()), meta)
        for template in shipped_templates():
            c.tickets.publish_template(template, expected_version=None, meta=meta)
        from projections.follower import StoreFollower

        StoreFollower(c.engine, c.read_log).catch_up()  # every read model: staff, workers, ...

    # --- T1, T2 ----------------------------------------------------------------------

    def seed(self) -> None:
        from projections.tickets.tickets import templates_in_force

        c, plan = self.c, self.plan
        definition = c.tickets.workflow_definition("installation")
        customers = [uuid5(UUID(int=5), f"bench-customer-{k}") for k in range(plan.customers)]
        seeder = Seeder(
            c.tickets,
            definition,
            templates_in_force(c.read_db),
            Roster(self.workers),
            self.departments,
            customers,
            datetime.now(UTC),
        )
        self.say(f"T1: seeding {plan.events:,} ticket events through TicketsApp, {BATCH}/tx")
        head0 = c.head()
        started = time.perf_counter()
        tickets, events = seeder.run(plan.events, self.say)
        took = time.perf_counter() - started
        appended = c.head() - head0
        if appended != events:
            self.report.failures.append(f"T1: {events:,} events built, {appended:,} stored")
        width = _event_width(c, self.scratch.db_url)
        per_tx = max(1, round(events / max(1, math.ceil(tickets / BATCH))))
        raw_rows = min(plan.baseline_rows_max, max(events, 1_000))
        self.say(f"T1 baseline: executemany of {raw_rows:,} rows ({width[0]} B), {per_tx}/tx")
        raw = raw_insert_rate(self.scratch.db_url, raw_rows, per_tx, width)
        rate = appended / took
        fates = dict(sorted(seeder.fates.items(), key=lambda kv: STATES.index(kv[0])))
        self.figures["seed"] = {
            "tickets": tickets,
            "events": appended,
            "seconds": took,
            "events_per_s": rate,
            "raw_rows_per_s": raw,
            "states": fates,
            "breaches": seeder.breaches,
        }
        self.report.rows.append(
            Row(
                "T1",
                f"Seed {appended:,} ticket events ({tickets:,} tickets, "
                f"{appended / max(tickets, 1):.1f} events each) through TicketsApp "
                f"(prepare_ticket, step, issue_code; sealed), save_aggregates {BATCH} "
                f"tickets/tx: events/s",
                f"{fmt_rate(rate)} ({tickets / took:,.0f} tickets/s)",
                f"psycopg executemany, {per_tx:,} rows/tx, {width[0]} B rows, {raw_rows:,} rows",
                fmt_rate(raw),
                fmt_ratio(rate, raw),
            )
        )
        share = ", ".join(f"{k} {v / max(tickets, 1):.0%}" for k, v in fates.items())
        self.report.notes.append(
            f"T1 seeded states: {share}; {seeder.breaches:,} SLA breaches recorded; "
            f"time split: building {seeder.build_seconds:.0f} s, saving "
            f"{seeder.save_seconds:.0f} s, data keys {seeder.keys_seconds:.0f} s"
        )
        self.raw_insert = raw
        self.figures["raw_insert_width"] = width

    def project(self, label: str) -> tuple[int, float, float]:
        """Bring the tickets read model up to the log head; returns (events, seconds, of which
        reading the log). The autovacuum stand-in's pauses are not counted (autovacuum works
        beside the projector, not in it); they are noted."""
        c = self.c
        engine = c.engine
        after = engine.positions()["tickets"]
        count, reading, paused = 0, 0.0, 0.0
        started = time.perf_counter()
        next_report = started + 15
        with psycopg.connect(self.scratch.db_url, autocommit=True) as conn:
            while True:
                t0 = time.perf_counter()
                records = c.read_log(after, LOG_BATCH)
                reading += time.perf_counter() - t0
                if not records:
                    break
                engine.apply_batch(records, only=["tickets"])
                count += len(records)
                after = records[-1].position
                if (count // LOG_BATCH) % AUTOVACUUM_EVERY == 0:
                    paused += self._autovacuum(conn)
                if time.perf_counter() > next_report:
                    self.say(f"  {label}: projected {count:,} events")
                    next_report = time.perf_counter() + 15
        took = time.perf_counter() - started - paused
        self.vacuum()
        return count, took, reading

    def _autovacuum(self, conn: psycopg.Connection[Any]) -> float:
        """What autovacuum does with PostgreSQL's defaults (a table is vacuumed once its dead
        rows pass 20 % of its live ones, plus 50); this server may have it off. Every event
        rewrites its ticket's board row, so without it a bulk projection leaves ~7 dead
        versions of every row, and a table several times the size a live system's would be.
        Returns the seconds spent."""
        started = time.perf_counter()
        rows = conn.execute(
            "SELECT relname, n_live_tup, n_dead_tup FROM pg_stat_user_tables"
            " WHERE relname IN ('tickets_tickets', 'tickets_sla', 'tickets_workers')"
        ).fetchall()
        for table, live, dead in rows:
            if dead > 0.2 * live + 50:
                conn.execute(f"VACUUM {table}")
                self.autovacuums[table] = self.autovacuums.get(table, 0) + 1
        took = time.perf_counter() - started
        self.autovacuum_seconds += took
        return took

    def vacuum(self) -> None:
        """A last VACUUM (ANALYZE) once the read model is current, so the board is timed over
        fresh statistics and no dead rows."""
        with psycopg.connect(self.scratch.db_url, autocommit=True) as conn:
            dead = conn.execute(
                "SELECT COALESCE(SUM(n_dead_tup), 0) FROM pg_stat_user_tables"
                " WHERE relname LIKE 'tickets%%'"
            ).fetchone()
            started = time.perf_counter()
            for table in ("tickets_tickets", "tickets_timeline", "tickets_sla", "tickets_workers"):
                conn.execute(f"VACUUM (ANALYZE) {table}")
            self.vacuumed.append((int(dead[0]) if dead else 0, time.perf_counter() - started))

    def projection(self) -> None:
        self.say("T2: bringing the tickets read model up to date")
        count, took, reading = self.project("T2")
        rate = count / took if took else math.nan
        self.figures["projection"] = {
            "events": count,
            "seconds": took,
            "events_per_s": rate,
            "read_log_seconds": reading,
        }
        self.report.rows.append(
            Row(
                "T2",
                f"Project the tickets read model from the log ({count:,} events, "
                f"{LOG_BATCH:,} per tx; reading and decoding the log {reading:.0f} of "
                f"{took:.0f} s): events/s",
                fmt_rate(rate),
                "psycopg executemany rows/s (T1's baseline)",
                fmt_rate(self.raw_insert),
                fmt_ratio(rate, self.raw_insert),
            )
        )
        rows = self.c.read_db.query("SELECT COUNT(*) FROM tickets_tickets")[0][0]
        dead, took = self.vacuumed[-1] if self.vacuumed else (0, 0.0)
        with psycopg.connect(self.scratch.db_url, autocommit=True) as conn:
            autovacuum = conn.execute("SHOW autovacuum").fetchone()
        vacuums = ", ".join(f"{t} {n}×" for t, n in sorted(self.autovacuums.items()))
        self.report.notes.append(
            f"T2, autovacuum's part (autovacuum on this server: "
            f"{autovacuum[0] if autovacuum else '?'}): VACUUM whenever a table's dead rows "
            f"passed 20 % of its live ones + 50, as autovacuum's defaults do ({vacuums or 'none'};"
            f" {self.autovacuum_seconds:.0f} s, not counted in T2's time), then VACUUM (ANALYZE)"
            f" of the tickets tables ({dead:,} dead row versions left, {took:.1f} s)"
        )
        with psycopg.connect(self.scratch.db_url, autocommit=True) as conn:
            sizes = conn.execute(
                "SELECT pg_size_pretty(pg_total_relation_size(%s::regclass)),"
                " pg_size_pretty(pg_total_relation_size('tickets_tickets')),"
                " pg_size_pretty(pg_total_relation_size('tickets_timeline'))",
                (_events_table(self.c),),
            ).fetchone()
        self.report.notes.append(
            f"store: {self.c.head():,} events ({sizes[0] if sizes else '?'}); board table "
            f"tickets_tickets {int(rows):,} rows ({sizes[1] if sizes else '?'}), timeline "
            f"{sizes[2] if sizes else '?'}"
        )

    # --- the API ---------------------------------------------------------------------

    def start_api(self) -> str:
        port = _free_port()
        self.procs.spawn("api", ["-m", "api.bench", HOST, str(port)])
        base = f"http://{HOST}:{port}"
        deadline = time.monotonic() + self.plan.startup_timeout
        while True:
            self.procs.check_alive("api")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1, trust_env=False).status_code == 200:
                    return base
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the API did not answer /healthz:\n{self.procs.log_tail('api')}"
                )
            time.sleep(0.2)

    def _cpu_probe(self) -> cpu.Probe:
        def api() -> list[int]:
            proc = self.procs.procs.get("api")
            return cpu.tree(proc.pid) if proc is not None else []

        return cpu.Probe(
            {
                "API": api,
                "PostgreSQL": lambda: cpu.matching("postgres:", self.scratch.db_name),
                "bench process": lambda: [os.getpid()],
            }
        )

    def _cpu_note(
        self, label: str, probe: cpu.Probe, machine0: tuple[float, float], n: int
    ) -> None:
        spent = probe.end()
        busy, total = cpu.machine()
        share = (busy - machine0[0]) / max(total - machine0[1], 1e-9)
        if n and not any(math.isnan(v) for v in spent.values()):
            per = ", ".join(f"{k} {v / n * 1000:.2f}" for k, v in spent.items())
            self.report.notes.append(
                f"{label}: CPU per request (ms): {per}; the machine was {share:.0%} busy "
                f"over the phase ({os.cpu_count()} cores; the rest of it: other work)"
            )

    # --- T3, T4 ----------------------------------------------------------------------

    def transitions(self, base: str) -> None:
        c, plan = self.c, self.plan
        rng = random.Random(11)
        rows = c.read_db.query(
            "SELECT ticket_id, state, assignee, version FROM tickets_tickets"
            " WHERE state IN ('assigned', 'scheduled') AND assignee IS NOT NULL"
        )
        rng.shuffle(rows)
        tokens: dict[str, str] = {}
        requests: list[Request] = []
        duplicates = 0
        visit = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
        for n, (ticket_id, state, assignee, version) in enumerate(rows):
            token = tokens.get(assignee)
            if token is None:
                token = tokens[assignee] = c.tokens.create("staff", staff_id=assignee)
            if state == "assigned":
                body: dict[str, Any] = {"transition": "schedule", "form": {"visit_on": visit}}
            else:
                body = {"transition": "arrive", "form": {"arrival_photo": f"media:a-{n:08d}"}}
            body["expected_version"] = int(version)
            request = Request(
                body["transition"],
                "POST",
                f"/v1/tickets/{ticket_id}/transitions",
                token,
                None,
                body,
            )
            requests.append(request)
            if n % DUPLICATE_EVERY == DUPLICATE_EVERY - 1:
                # The same card dragged again from the same version, a moment later.
                requests.insert(
                    max(0, len(requests) - 1 - rng.randrange(1, max(2, plan.clients))), request
                )
                duplicates += 1
        if not requests:
            raise RuntimeError("no assigned or scheduled tickets to move")
        self.say(
            f"T3: transitions over HTTP, {plan.clients} in flight, {plan.warmup:.0f} s warm-up +"
            f" {plan.transition_seconds:.0f} s ({len(requests):,} available)"
        )
        probe, machine0 = self._cpu_probe(), cpu.machine()
        probe.begin()
        head0 = c.head()
        samples, start, end = drive(
            base,
            plan.clients,
            requests,
            warmup=plan.warmup,
            seconds=plan.transition_seconds,
        )
        # Rows, not positions: a save lost to its twin leaves a gap in the positions.
        with psycopg.connect(self.scratch.db_url) as conn:
            counted = conn.execute(
                f"SELECT COUNT(*) FROM {_events_table(c)} WHERE notification_id > %s", (head0,)
            ).fetchone()
        appended = int(counted[0]) if counted else 0
        self._cpu_note("T3 transitions", probe, machine0, len(samples))
        window = _in_window(samples, start, end)
        ok = _latencies(window)
        conflicts = [s for s in samples if s.status == 409]
        codes = Counter(s.error for s in conflicts)
        statuses = Counter(s.status for s in samples)
        sent_dups = self._duplicates_sent(samples, requests)
        seconds = end - start
        rate = len(ok) / seconds if seconds > 0 else math.nan
        self.say(f"T3 baseline: psycopg single-row INSERT, {plan.clients} connections")
        ins = insert_baseline(self.scratch.db_url, plan)  # type: ignore[arg-type]
        base_lat = ins.all_latencies()
        by_kind = {
            k: _latencies([s for s in window if s.kind == k]) for k in ("schedule", "arrive")
        }
        self.figures["transitions"] = {
            "sent": len(samples),
            "ok_in_window": len(ok),
            "window_seconds": seconds,
            "per_s": rate,
            "statuses": {str(k): v for k, v in statuses.items()},
            "conflicts_409": len(conflicts),
            "conflict_codes": dict(codes),
            "duplicates_sent": sent_dups,
            "p50": percentile(ok, 50),
            "p95": percentile(ok, 95),
            "p99": percentile(ok, 99),
            "events_appended": appended,
            "insert_tx_per_s": ins.per_second(),
            "insert_p50": percentile(base_lat, 50),
            "insert_p99": percentile(base_lat, 99),
        }
        errors = {k: v for k, v in statuses.items() if k not in (200, 409)}
        self.report.rows += [
            Row(
                "T3",
                f"Transitions over HTTP as the assignee (schedule / arrive, distinct tickets, "
                f"expected_version as read; {plan.clients} in flight, "
                f"{seconds:.0f} s, n={len(ok):,}; 409s apart: {len(conflicts)} of "
                f"{sent_dups} deliberate duplicates): transitions/s",
                fmt_rate(rate),
                f"psycopg 1-row INSERT tx/s ({plan.clients} conns)",
                fmt_rate(ins.per_second()),
                fmt_ratio(rate, ins.per_second()),
            ),
            Row(
                "T4",
                f"  transition request → 200 (schedule {fmt_p50(by_kind['schedule'])} / "
                f"arrive {fmt_p50(by_kind['arrive'])} ms p50)",
                fmt_lat3(ok),
                "1-row INSERT tx latency",
                fmt_lat3(base_lat),
                fmt_lat_ratio(ok, base_lat),
            ),
        ]
        self.report.notes.append(
            f"T3: {len(samples):,} requests sent in all (warm-up included): "
            + ", ".join(f"HTTP {k}: {v:,}" for k, v in sorted(statuses.items()))
            + f"; the 409s' codes: {dict(codes) or 'none'} (stale_version: the twin had been"
            " saved before this one was read; concurrent_update: both were read at the same"
            f" version and this one lost the save); {appended:,} events were recorded"
        )
        expected = {"stale_version", "concurrent_update"}
        if len(conflicts) != sent_dups or set(codes) - expected:
            self.report.failures.append(
                f"T3: {len(conflicts)} 409s ({dict(codes)}) for {sent_dups} duplicates"
            )
        if errors:
            self.report.failures.append(f"T3: unexpected answers {errors}")
        if not ok:
            self.report.failures.append("T3: no transition succeeded in the window")

    @staticmethod
    def _duplicates_sent(samples: list[Sample], requests: list[Request]) -> int:
        """Requests whose twin was also sent and answered."""
        seen: Counter[str] = Counter(requests[s.index].path for s in samples)
        return sum(1 for n in seen.values() if n > 1)

    # --- T5, T6 ----------------------------------------------------------------------

    def board(self, base: str) -> None:
        c, plan = self.c, self.plan
        self.say("T5: tickets read model catch-up after the transitions")
        count, took, _ = self.project("catch-up")
        self.report.notes.append(
            f"after T3 the tickets read model caught up with {count:,} events in {took:.1f} s"
        )
        rng = random.Random(13)
        manager_tokens = {d: c.tokens.create("manager", department=d) for d in sorted(self.regions)}
        staff_tokens: dict[str, str] = {}
        staff = sorted(self.departments)
        open_states = ("assigned", "scheduled", "on_site")

        def manager_request() -> Request:
            department = rng.choice(list(manager_tokens))
            members = [s for s, d in self.departments.items() if d == department]
            regions = self.regions[department]
            params = rng.choice(
                (
                    {},
                    {"state": rng.choice(STATES[1:])},
                    {"open": "true"},
                    {"assignee": rng.choice(members)},
                    {"state": rng.choice(open_states), "assignee": rng.choice(members)},
                    {"region": rng.choice(regions)},
                    {"state": rng.choice(STATES[1:]), "region": rng.choice(regions)},
                )
            )
            token = manager_tokens[department]
            return Request(f"manager {_shape(params)}", "GET", "/v1/tickets", token, params)

        def staff_request() -> Request:
            who = rng.choice(staff)
            token = staff_tokens.get(who)
            if token is None:
                token = staff_tokens[who] = c.tokens.create("staff", staff_id=who)
            city = next(city for city, ids in self.workers.items() if who in ids)
            params = rng.choice(
                (
                    {},
                    {"state": rng.choice(open_states)},
                    {"state": rng.choice(STATES[1:])},
                    {"open": "true"},
                    {"region": rng.choice(CITIES[city])},
                )
            )
            return Request(f"staff {_shape(params)}", "GET", "/v1/tickets", token, params)

        results: dict[str, list[float]] = {}
        for role, make in (("manager", manager_request), ("staff", staff_request)):
            warm = [make() for _ in range(plan.board_warmup)]
            drive(base, plan.clients, warm)
            requests = [make() for _ in range(plan.board_queries)]
            self.say(f"T5/T6: {len(requests):,} board queries as {role}, {plan.clients} in flight")
            probe, machine0 = self._cpu_probe(), cpu.machine()
            probe.begin()
            samples, start, end = drive(base, plan.clients, requests)
            self._cpu_note(f"board as {role}", probe, machine0, len(samples))
            results[role] = _latencies(samples)
            by_shape: dict[str, list[float]] = {}
            for sample in samples:
                if sample.status == 200:
                    by_shape.setdefault(sample.kind, []).append(sample.end - sample.start)
            slowest = sorted(by_shape.items(), key=lambda kv: -percentile(kv[1], 99))[:3]
            self.report.notes.append(
                f"board as {role}, slowest filters (p50 / p99 ms): "
                + "; ".join(
                    f"{kind.split(' ', 1)[1]} (n={len(lat)}) {fmt_p50(lat)} / "
                    f"{percentile(lat, 99) * 1000:.1f}"
                    for kind, lat in slowest
                )
            )
            bad = Counter(s.status for s in samples if s.status != 200)
            if bad:
                self.report.failures.append(f"board as {role}: answers {dict(bad)}")
            self.figures[f"board_{role}"] = {
                "queries": len(samples),
                "ok": len(results[role]),
                "per_s": len(results[role]) / (end - start) if end > start else math.nan,
                "p50": percentile(results[role], 50),
                "p95": percentile(results[role], 95),
                "p99": percentile(results[role], 99),
            }
            # The same mix one at a time: what a query costs without waiting behind others.
            alone, _, _ = drive(base, 1, [make() for _ in range(plan.board_alone)])
            alone_lat = _latencies(alone)
            self.figures[f"board_{role}_alone"] = {
                "queries": len(alone),
                "p50": percentile(alone_lat, 50),
                "p99": percentile(alone_lat, 99),
            }
            self.report.notes.append(
                f"board as {role}, one request at a time (n={len(alone_lat)}): "
                f"{fmt_lat3(alone_lat)}"
            )
        probe, machine0 = self._cpu_probe(), cpu.machine()
        probe.begin()
        floor, _, _ = drive(
            base,
            plan.clients,
            [Request("healthz", "GET", "/healthz", "none") for _ in range(plan.board_queries)],
        )
        self._cpu_note("GET /healthz (the HTTP floor)", probe, machine0, len(floor))
        floor_lat = _latencies(floor)
        self.say(f"T5/T6 baseline: {plan.board_queries:,} raw indexed SELECTs, same rows")
        raw = raw_select(self.scratch.db_url, plan.clients, staff, plan.board_queries)
        self.figures["raw_select"] = {
            "queries": len(raw),
            "p50": percentile(raw, 50),
            "p95": percentile(raw, 95),
            "p99": percentile(raw, 99),
        }
        self.figures["healthz"] = {
            "p50": percentile(floor_lat, 50),
            "p99": percentile(floor_lat, 99),
        }
        rows = self.c.read_db.query("SELECT COUNT(*) FROM tickets_tickets")[0][0]
        raw_label = (
            f"psycopg indexed SELECT … LIMIT 101, copy of the board table ({int(rows):,} rows)"
        )
        for row_id, role, who in (
            ("T5", "manager", "a manager (their department's; state/assignee/region/open)"),
            ("T6", "staff", "a staff member (their own; state/region/open)"),
        ):
            lat = results[role]
            self.report.rows.append(
                Row(
                    row_id,
                    f"Board GET /v1/tickets as {who}, n={len(lat):,}, {plan.clients} in flight",
                    fmt_lat3(lat),
                    raw_label,
                    fmt_lat3(raw),
                    fmt_lat_ratio(lat, raw),
                )
            )
        self.report.notes.append(
            f"HTTP floor, GET /healthz through the same {plan.clients} clients: "
            f"{fmt_lat3(floor_lat)}"
        )

    # --- all ----------------------------------------------------------------------------

    def run(self) -> None:
        self.procs.start_supervisor()
        self.setup()
        self.seed()
        self.projection()
        base = self.start_api()
        try:
            self.transitions(base)
            self.board(base)
        finally:
            self.procs.stop("api")

    def cleanup(self) -> None:
        self.procs.close()
        self.report.failures.extend(self.scratch.teardown())


def _shape(params: dict[str, str]) -> str:
    """A board request's filters, for the breakdown: `state+region`, `all`."""
    return "+".join(k for k in ("state", "assignee", "region", "open") if k in params) or "all"


def fmt_p50(values: list[float]) -> str:
    return "—" if not values else f"{percentile(values, 50) * 1000:.1f}"


def render(bench: TicketsBench, quick: bool, started: float) -> Table:
    plan = bench.plan
    out = Table(
        title=f"scrm tickets bench ({'quick' if quick else 'full'}; {plan.events:,} ticket events "
        f"asked; {os.cpu_count()} CPUs; baselines measured in this run)",
        title_justify="left",
    )
    for name, kw in (
        ("#", {"no_wrap": True}),
        ("figure", {}),
        ("scrm", {"justify": "right"}),
        ("raw baseline", {}),
        ("baseline", {"justify": "right"}),
        ("ratio", {"justify": "right"}),
    ):
        out.add_column(name, **kw)  # type: ignore[arg-type]
    for r in bench.report.rows:
        out.add_row(r.id, r.figure, r.value, r.baseline, r.baseline_value, r.ratio)
    return out


def _machine_state() -> str:
    """Load averages and the busiest other processes right now (names only)."""
    parts = []
    if hasattr(os, "getloadavg"):
        parts.append("load average " + " / ".join(f"{x:.2f}" for x in os.getloadavg()))
    busy: list[tuple[float, str]] = []
    before = cpu.by_pid(cpu._all_pids())
    time.sleep(1.0)
    after = cpu.by_pid(before)
    for pid, t in after.items():
        used = t - before.get(pid, t)
        if used >= 0.05 and pid != os.getpid():
            with contextlib.suppress(OSError):
                name = (Path("/proc") / str(pid) / "comm").read_text().strip()
                busy.append((used, name))
    if busy:
        top = sorted(busy, reverse=True)[:5]
        parts.append("busiest over 1 s: " + ", ".join(f"{n} {u:.0%}" for u, n in top))
    return "; ".join(parts) or "unknown"


def run_tickets_bench(
    settings: Settings,
    *,
    events: int | None = None,
    quick: bool = False,
    json_path: Path | None = None,
) -> int:
    """Run it and print the table. 0 when every figure was measured, 1 when something failed,
    2 when PostgreSQL is missing."""
    plan = QUICK if quick else FULL
    if events is not None:
        plan = replace(plan, events=events)
    out = Console(width=None if sys.stdout.isatty() else 180)
    err = Console(stderr=True)
    admin = admin_url(settings)
    problem = pg_problem(admin)
    if problem:
        err.print(f"[red]{problem}[/red]")
        return 2
    bench = TicketsBench(plan, admin, err)
    started = time.perf_counter()
    before = _machine_state()
    bench.report.notes.insert(0, f"machine at the start: {before}")
    try:
        bench.run()
    except Exception as exc:
        bench.report.failures.append(f"{type(exc).__name__}: {exc}")
        err.print(f"[red]tickets bench failed[/red]\n{traceback.format_exc()}")
    finally:
        bench.cleanup()
    bench.report.notes.append(f"machine at the end: {_machine_state()}")
    out.print(render(bench, quick, started))
    out.print("ratio = scrm ÷ baseline (throughput: higher is better; latency: lower is better)")
    for note in bench.report.notes:
        out.print(f"  • {note}")
    for name, code, why in bench.procs.crashes:
        out.print(f"[yellow]  ! {name} exited {code}: {why}[/yellow]")
    out.print(f"  • total {time.perf_counter() - started:.0f} s")
    for failure in bench.report.failures:
        out.print(f"[red]  ✗ {failure}[/red]")
    if json_path is not None:
        json_path.write_bytes(
            orjson.dumps(
                {
                    "plan": asdict(plan),
                    "rows": [r.__dict__ for r in bench.report.rows],
                    "figures": bench.figures.values,
                    "failures": bench.report.failures,
                },
                option=orjson.OPT_INDENT_2,
                default=str,
            )
        )
    return 1 if bench.report.failures else 0
