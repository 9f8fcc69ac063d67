"""The event store on PostgreSQL: locked inserts, lock timeout, and a follower that never skips."""

from __future__ import annotations

import threading

import pytest

from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.factories import meta

pytestmark = pytest.mark.integration


def test_the_store_uses_the_locked_insert_path_with_a_lock_timeout(pg_settings: Settings) -> None:
    c = bootstrap(pg_settings)
    datastore = c.customers.recorder.datastore  # type: ignore[attr-defined]
    assert datastore.enable_db_functions is False
    assert datastore.lock_timeout == pg_settings.lock_timeout_seconds
    c.close()


def test_an_append_is_one_statement_of_the_stores_own_insert_function(
    pg_settings: Settings,
) -> None:
    """The lock, the NOTIFY and the insert run inside one server-side statement, so the
    table lock is never held while its holder's process gets round to sending COMMIT."""
    import psycopg

    from infra.event_recorder import ColumnArraysRecorder

    c = bootstrap(pg_settings)
    recorder = c.customers.recorder
    assert isinstance(recorder, ColumnArraysRecorder)
    name = f"{recorder.events_table_name}_insert_uuid"
    position = c.customers.add_customer(
        identities=[("openid", "one-statement")], tags=[], owner=None, meta=meta()
    )
    assert position and c.head() > 0
    with psycopg.connect(str(pg_settings.database_url), autocommit=True) as conn:
        found = conn.execute("SELECT count(*) FROM pg_proc WHERE proname = %s", (name,))
        assert found.fetchone() == (1,)
        # Released with the statement: another writer takes it at once.
        with conn.transaction():
            conn.execute(f"LOCK TABLE {recorder.events_table_name} IN EXCLUSIVE MODE NOWAIT")
    c.close()


def test_a_follower_tailing_the_log_during_concurrent_appends_never_skips_an_event(
    pg_settings: Settings,
) -> None:
    c = bootstrap(pg_settings)
    stop, writers_done = threading.Event(), threading.Event()
    seen: list[int] = []

    def write(n: int) -> None:
        i = 0
        while not stop.is_set():
            c.customers.add_customer(
                identities=[("openid", f"w{n}-{i}")], tags=[], owner=None, meta=meta()
            )
            i += 1

    def follow() -> None:
        after = 0
        while not writers_done.is_set() or after < c.head():
            records = c.read_log(after, 200)
            seen.extend(r.position for r in records)
            if records:
                after = records[-1].position

    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    follower = threading.Thread(target=follow)
    for t in [*writers, follower]:
        t.start()
    stop.wait(2.0)
    stop.set()
    for t in writers:
        t.join(30)
    writers_done.set()
    follower.join(30)
    everything = [r.position for batch in c.log_batches() for r in batch]
    assert len(everything) > 100
    assert seen == everything  # in order, none skipped, none twice
    c.close()


def test_several_processes_scanning_one_hot_code_take_turns_and_every_scan_succeeds(
    pg_settings: Settings,
) -> None:
    """Four containers (as four API processes) × two threads × 25 scans on one code."""
    from concurrent.futures import ThreadPoolExecutor
    from uuid import UUID

    containers = [bootstrap(pg_settings) for _ in range(4)]
    app = containers[0].customers
    for staff_id in ("a", "b"):
        app.register_staff(staff_id=staff_id, name="员工", department="d", region="r", meta=meta())
    code = UUID(
        app.create_channel_code(
            name="hot",
            staff_pool=["a", "b"],
            tags=[],
            welcome_message="",
            expires_at=None,
            max_scans=None,
            meta=meta(),
        ).id
    )

    def worker(job: tuple[int, int]) -> list[str]:
        n, t = job
        return [
            containers[n]
            .customers.scan_channel_code(
                code, identities={"openid": f"p{n}t{t}i{i}"}, device=None, ip=None, meta=meta()
            )
            .customer_id
            for i in range(25)
        ]

    jobs = [(n, t) for n in range(4) for t in range(2)]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        customers = [cid for batch in pool.map(worker, jobs) for cid in batch]
    assert len(customers) == len(set(customers)) == 200
    fresh = bootstrap(pg_settings)
    assert fresh.customers.repository.get(code).scans == 200
    for c in [*containers, fresh]:
        c.close()


def test_every_context_appends_to_the_one_scrm_log_and_the_relay_listens_on_its_channel(
    pg_settings: Settings,
) -> None:
    import psycopg

    c = bootstrap(pg_settings)
    assert c.customers.name == "scrm"
    c.customers.register_staff(staff_id="z", name="甲", department="d", region="r", meta=meta())
    with psycopg.connect(str(pg_settings.database_url)) as conn:
        tables = {
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE '%events'")
        }
    assert tables == {"scrm_events"}
    assert c.customers.recorder.channel_name == "scrm_events"  # type: ignore[attr-defined]
    c.close()


def test_the_relays_waiter_wakes_on_the_stores_notify_rather_than_its_timeout(
    pg_settings: Settings,
) -> None:
    from infra.listen import pg_waiter

    c = bootstrap(pg_settings)
    wait = pg_waiter(str(pg_settings.database_url), c.customers.recorder.channel_name)  # type: ignore[attr-defined]
    wait(0.01)  # connects and LISTENs
    woke = threading.Event()

    def sleeper() -> None:
        wait(60.0)
        woke.set()

    t = threading.Thread(target=sleeper, daemon=True)
    t.start()
    c.customers.register_staff(staff_id="n", name="乙", department="d", region="r", meta=meta())
    assert woke.wait(20.0), "the waiter slept through the NOTIFY"
    c.close()


def test_processes_starting_together_on_a_new_database_all_come_up(pg_settings: Settings) -> None:
    """api, relay and projector start at once under docker-compose: table creation queues."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=6) as pool:
        containers = list(pool.map(lambda _: bootstrap(pg_settings), range(6)))
    assert all(c.head() == 0 for c in containers)
    for c in containers:
        c.close()
