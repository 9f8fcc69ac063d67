"""A hot code is loaded from a snapshot plus the events after it, with the same state."""

from __future__ import annotations

from domain.customers.aggregates import ChannelCode
from infra.bootstrap import Container, bootstrap
from tests.unit.world import hire, print_code, scan


def test_a_code_scanned_past_the_snapshot_interval_reloads_from_its_snapshot(
    container: Container,
) -> None:
    app = container.customers
    hire(app, "a", "b", "c")
    code_id = print_code(app, ["a", "b", "c"])
    for i in range(130):
        scan(app, code_id, f"snap-{i}")
    assert app.snapshots is not None
    assert [s.originator_version for s in app.snapshots.get(code_id)] == [100]

    fresh = bootstrap(container.settings)  # another process: nothing cached
    try:
        loaded = fresh.customers.repository.get(code_id)
        replayed = None  # the long way: every event from the start
        for event in fresh.customers.events.get(code_id):
            replayed = event.mutate(replayed)
        assert isinstance(loaded, ChannelCode) and isinstance(replayed, ChannelCode)
        assert loaded.version == replayed.version == 131
        assert loaded.__dict__.keys() == replayed.__dict__.keys()
        assert (loaded.scans, loaded.rotation_cursor) == (replayed.scans, replayed.rotation_cursor)
        assert (loaded.scans, loaded.rotation_cursor) == (130, 130 % 3)
        # And it goes on from there, in turn.
        assert scan(fresh.customers, code_id, "after-snapshot").assigned_staff == "b"
    finally:
        fresh.close()
