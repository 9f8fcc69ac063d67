"""Server mode on the real PostgreSQL and NATS JetStream: relay, projector, crashes, rebuilds.

The relay and the projector run as the same `scrm relay` / `scrm project` processes that
docker-compose starts, so SIGKILL hits them exactly as it would in production.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import nats
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from domain.shared import Refused
from infra.bootstrap import Container, bootstrap
from infra.events import EventRecord
from infra.settings import Settings
from projections import all_projections
from projections.base import Projection
from tests.factories import ApiClient, meta
from tests.integration.support import ROOT, env_for

pytestmark = pytest.mark.integration


class Process:
    """One `scrm <command>` child process."""

    def __init__(self, command: str, settings: Settings):
        self.command = command
        self.settings = settings
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", self.command],
            cwd=ROOT,
            env=env_for(self.settings),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def assert_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            err = self.proc.stderr.read().decode() if self.proc.stderr else ""
            raise AssertionError(f"scrm {self.command} exited {self.proc.returncode}: {err}")


@contextmanager
def running(*commands: str, settings: Settings) -> Iterator[list[Process]]:
    procs = [Process(c, settings).start() for c in commands]
    try:
        yield procs
    finally:
        for p in procs:
            p.stop()


def wait_until(predicate, timeout: float = 30.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def caught_up(c: Container) -> bool:
    head = c.head()
    return head > 0 and all(p >= head for p in c.engine.positions().values())


def dump(c: Container) -> dict[str, list[tuple[object, ...]]]:
    """Every read-model table, every row, in a stable order."""
    out = {}
    for projection in c.engine.projections.values():
        for table in projection.tables:
            rows = c.read_db.query(f"SELECT * FROM {table}")
            out[table] = sorted(tuple(str(v) for v in r) for r in rows)
    return out


def stream_positions(settings: Settings) -> list[int]:
    """The store position of every message in the stream, in stream order."""
    import orjson

    async def read() -> list[int]:
        nc = await nats.connect(str(settings.nats_url))
        js = nc.jetstream()
        info = await js.stream_info(settings.nats_stream)
        positions = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(settings.nats_stream, seq)
            positions.append(orjson.loads(msg.data)["position"])
        await nc.close()
        return positions

    return asyncio.run(read())


def seed(c: Container, staff: int = 3) -> UUID:
    app = c.customers
    pool = []
    for i in range(staff):
        app.register_staff(
            staff_id=f"s{i}", name=f"员工{i}", department="east", region="shanghai", meta=meta()
        )
        pool.append(f"s{i}")
    code = app.create_channel_code(
        name="crash",
        staff_pool=pool,
        tags=["t"],
        welcome_message="hi",
        expires_at=None,
        max_scans=None,
        meta=meta(),
    )
    return UUID(code.id)


class Writer(threading.Thread):
    """Keeps recording scans (and some tag changes) until stopped."""

    def __init__(self, c: Container, code: UUID):
        super().__init__(daemon=True)
        self.c, self.code = c, code
        self.stopping = threading.Event()
        self.count = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                r = self.c.customers.scan_channel_code(
                    self.code,
                    identities={"openid": f"o{self.count}"},
                    device="d",
                    ip="127.0.0.1",
                    meta=meta(),
                )
                if self.count % 5 == 0:
                    self.c.customers.change_tags(
                        UUID(r.customer_id),
                        add=[f"k{self.count % 3}"],
                        remove=[],
                        expected_version=None,
                        scope=_admin(),
                        meta=meta(),
                    )
                self.count += 1
        except BaseException as exc:  # surfaced by the test
            self.error = exc


def _admin():  # type: ignore[no-untyped-def]
    from domain.scope import Scope

    return Scope(role="admin")


def test_a_command_reaches_the_read_model_through_the_relay_and_the_projector(
    server_settings: Settings,
) -> None:
    c = bootstrap(server_settings)
    assert not c.in_process_projections  # server mode: the API process does not project
    admin = c.tokens.create("admin")
    with (
        running("relay", "project", settings=server_settings),
        TestClient(create_app(container=c)) as tc,
    ):
        api = ApiClient(tc, admin)
        api.staff("zhang")
        code = api.code(["zhang"], tags=["海报"])
        scan = api.scan(code["id"], openid="oVisitor1")
        assert scan.status_code == 201, scan.text
        body = scan.json()
        # Read-your-writes across processes: the query waits for the projector.
        portrait = api.get(
            f"/v1/customers/{body['customer_id']}/portrait",
            params={"min_position": body["position"]},
        )
        assert portrait.status_code == 200, portrait.text
        assert portrait.json()["tags"] == ["海报"]
        assert [t["event"] for t in portrait.json()["timeline"]] == [
            "CustomerAdded",
            "ChannelCodeScanned",
        ]
        ready = api.get("/readyz").json()
        assert ready["bus"] == "ok" and ready["mode"] == "server"
    assert sorted(stream_positions(server_settings)) == list(range(1, c.head() + 1))
    c.close()


def test_a_merge_and_its_undo_reach_both_portraits_through_the_relay_and_the_projector(
    server_settings: Settings,
) -> None:
    c = bootstrap(server_settings)
    with (
        running("relay", "project", settings=server_settings),
        TestClient(create_app(container=c)) as tc,
    ):
        api = ApiClient(tc, c.tokens.create("admin", subject="li.audit"))

        def add(identity: dict[str, str], tags: list[str]) -> str:
            r = api.post("/v1/customers", {"identities": [identity], "tags": tags})
            assert r.status_code == 201, r.text
            return r.json()["id"]  # type: ignore[no-any-return]

        def portrait(cid: str, position: int) -> Any:
            r = api.get(f"/v1/customers/{cid}/portrait", params={"min_position": position})
            assert r.status_code == 200, r.text
            return r.json()

        a = add({"kind": "openid", "value": "oA"}, ["vip"])
        b = add({"kind": "phone", "value": "13800000009"}, ["spring"])
        merged = api.post(f"/v1/customers/{a}/merges", {"customer_id": b, "reason": "one person"})
        assert merged.status_code == 201, merged.text
        at = merged.json()["position"]
        assert portrait(a, at)["tags"] == ["spring", "vip"]
        assert ("phone", "13800000009") in {
            (i["kind"], i["value"]) for i in portrait(a, at)["identities"]
        }
        assert portrait(b, at)["merged_into"] == a

        undone = api.post(f"/v1/customers/{a}/merges/{b}/undo", {"reason": "two people"})
        assert undone.status_code == 202, undone.text
        at = undone.json()["position"]
        survivor, restored = portrait(a, at), portrait(b, at)
        assert survivor["tags"] == ["vip"] and restored["tags"] == ["spring"]
        assert restored["status"] == "active"
        assert survivor["merges"][0]["undone_by"] == "user:li.audit"
        assert [t["event"] for t in restored["timeline"]][-2:] == [
            "CustomerMergedInto",
            "CustomerMergeUndone",
        ]
    assert sorted(stream_positions(server_settings)) == list(range(1, c.head() + 1))
    c.close()


def test_killing_the_projector_then_the_relay_mid_stream_loses_nothing_and_applies_nothing_twice(
    server_settings: Settings,
) -> None:
    c = bootstrap(server_settings)
    code = seed(c)
    writer = Writer(c, code)
    writer.start()
    relay = Process("relay", server_settings).start()
    projector = Process("project", server_settings).start()
    try:
        # Let the projector get part-way, then kill it without warning.
        wait_until(lambda: min(c.engine.positions().values()) > 60, what="projector progress")
        projector.kill()
        killed_at = min(c.engine.positions().values())
        wait_until(lambda: c.head() > killed_at + 60, what="more events while it is down")
        projector = Process("project", server_settings).start()
        wait_until(
            lambda: min(c.engine.positions().values()) > killed_at + 30,
            what="the restarted projector to resume",
        )

        # Now the relay, mid-stream.
        relay.assert_alive()
        relay.kill()
        wait_until(
            lambda: c.head() > c.engine.low_water_mark() + 40,
            what="events piling up behind the dead relay",
        )
        relay = Process("relay", server_settings).start()
        time.sleep(0.5)
    finally:
        writer.stopping.set()
        writer.join(30)
    assert writer.error is None, writer.error
    try:
        wait_until(lambda: caught_up(c), timeout=60, what="read models to reach the head")
        relay.assert_alive()
        projector.assert_alive()
    finally:
        relay.stop()
        projector.stop()

    head = c.head()
    assert writer.count > 100
    # Every event is on the bus exactly once (JetStream dropped the relay's re-publishes) ...
    positions = stream_positions(server_settings)
    store_positions = [r.position for batch in c.log_batches() for r in batch]
    assert sorted(positions) == store_positions
    assert len(positions) == len(set(positions))
    # ... and the read models equal a fresh rebuild from the log: nothing lost, nothing twice.
    live = dump(c)
    scans = c.read_db.query("SELECT scans FROM channel_stats_codes")
    assert int(scans[0][0]) == writer.count
    for name in c.engine.projections:
        c.engine.rebuild(name, c.log_batches())
    assert dump(c) == live
    assert all(p == head for p in c.engine.positions().values())
    c.close()


def test_a_relay_restarted_from_zero_republishes_and_jetstream_drops_every_duplicate(
    server_settings: Settings,
) -> None:
    c = bootstrap(server_settings)
    seed(c)
    relay = c.relay()
    stats = asyncio.run(relay.run(until_caught_up=True))
    assert stats.published == c.head() and stats.duplicates == 0
    # Simulate a crash after publishing but before recording the position.
    with c.read_db.transaction() as cur:
        cur.execute("UPDATE relay_positions SET position = 0")
    again = c.relay()
    stats = asyncio.run(again.run(until_caught_up=True))
    assert stats.duplicates == c.head()
    assert sorted(stream_positions(server_settings)) == list(range(1, c.head() + 1))
    c.close()


def test_the_projector_reads_skipped_stream_sequences_directly_and_in_order(
    server_settings: Settings,
) -> None:
    """If a delivery jumps ahead of the projector's cursor, it fills the gap from the stream."""
    c = bootstrap(server_settings)
    code = seed(c)
    for i in range(20):
        c.customers.scan_channel_code(
            code, identities={"openid": f"g{i}"}, device=None, ip=None, meta=meta()
        )
    asyncio.run(c.relay().run(until_caught_up=True))
    projector = c.projector()

    async def ack_first_half() -> None:
        # Another member of the durable consumer acknowledged the first half and died
        # before writing anything: the next delivery starts past our cursor.
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        nc = await nats.connect(str(server_settings.nats_url))
        js = nc.jetstream()
        sub = await js.pull_subscribe(
            f"{server_settings.nats_subject_prefix}.>",
            durable=projector.durable,
            stream=server_settings.nats_stream,
            config=ConsumerConfig(
                ack_policy=AckPolicy.ALL,
                deliver_policy=DeliverPolicy.ALL,
                max_ack_pending=20_000,
                ack_wait=30,
            ),
        )
        msgs = await sub.fetch(c.head() // 2, timeout=5)
        await msgs[-1].ack()
        await nc.close()

    asyncio.run(ack_first_half())
    asyncio.run(projector.run(idle_exit=1.0))
    assert caught_up(c)
    live = dump(c)
    for name in c.engine.projections:
        c.engine.rebuild(name, c.log_batches())
    assert dump(c) == live
    c.close()


def test_a_message_the_relay_did_not_publish_is_skipped_not_retried_for_ever(
    server_settings: Settings,
) -> None:
    """Anything else published under the stream's subjects (a benchmark's raw baseline once
    was) is not an event: the projector skips it instead of stalling every read model."""
    c = bootstrap(server_settings)
    code = seed(c)
    c.customers.scan_channel_code(
        code, identities={"openid": "before"}, device=None, ip=None, meta=meta()
    )
    asyncio.run(c.relay().run(until_caught_up=True))

    async def publish_foreign() -> None:
        nc = await nats.connect(str(server_settings.nats_url))
        js = nc.jetstream()
        await js.publish(f"{server_settings.nats_subject_prefix}.bench.ping", b"000000000001")
        await nc.close()

    asyncio.run(publish_foreign())
    c.customers.scan_channel_code(
        code, identities={"openid": "after"}, device=None, ip=None, meta=meta()
    )
    asyncio.run(c.relay().run(until_caught_up=True))
    projector = c.projector()
    asyncio.run(projector.run(idle_exit=1.0))
    assert projector.foreign == 1
    assert caught_up(c)
    c.close()


def test_refusals_flow_to_the_dashboard_in_server_mode(server_settings: Settings) -> None:
    c = bootstrap(server_settings)
    app = c.customers
    app.register_staff(staff_id="a", name="甲", department="d", region="r", meta=meta())
    code = app.create_channel_code(
        name="cap",
        staff_pool=["a"],
        tags=[],
        welcome_message="",
        expires_at=None,
        max_scans=1,
        meta=meta(),
    )
    app.scan_channel_code(
        UUID(code.id), identities={"openid": "x1"}, device=None, ip=None, meta=meta()
    )
    with pytest.raises(Refused) as refused:
        app.scan_channel_code(
            UUID(code.id), identities={"openid": "x2"}, device=None, ip=None, meta=meta()
        )
    assert refused.value.code == "code_exhausted"
    asyncio.run(c.relay().run(until_caught_up=True))
    asyncio.run(c.projector().run(idle_exit=1.0))
    row = c.read_db.query("SELECT scans, adds, refusals FROM channel_stats_codes")
    assert [tuple(int(v) for v in r) for r in row] == [(1, 1, 1)]
    c.close()


class Flaky(Projection):
    """Fails on the first customer it sees, once, like a database hiccup; logs every event."""

    name = "flaky"
    tables = ("flaky_seen",)
    ddl = ("CREATE TABLE IF NOT EXISTS flaky_seen (position BIGINT PRIMARY KEY)",)
    failures_left = 1

    def apply(self, record: EventRecord, cur: object) -> None:
        if record.name == "CustomerAdded" and Flaky.failures_left:
            Flaky.failures_left -= 1
            raise RuntimeError("transient failure")
        cur.execute("INSERT INTO flaky_seen (position) VALUES (?)", (record.position,))  # type: ignore[attr-defined]


def test_a_failing_batch_is_retried_by_the_projector_and_applied_exactly_once(
    server_settings: Settings,
) -> None:
    c = bootstrap(server_settings, projections=[*all_projections(), Flaky()])
    code = seed(c)
    for i in range(10):
        c.customers.scan_channel_code(
            code, identities={"openid": f"f{i}"}, device=None, ip=None, meta=meta()
        )
    asyncio.run(c.relay().run(until_caught_up=True))
    asyncio.run(c.projector().run(idle_exit=2.5))
    assert Flaky.failures_left == 0  # it did fail once
    seen = [int(r[0]) for r in c.read_db.query("SELECT position FROM flaky_seen ORDER BY 1")]
    assert seen == [r.position for batch in c.log_batches() for r in batch]  # once each (PK)
    assert caught_up(c)
    c.close()
