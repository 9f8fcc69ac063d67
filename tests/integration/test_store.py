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
