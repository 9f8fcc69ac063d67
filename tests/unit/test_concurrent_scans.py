"""Many scans of one code at once: every scan counts once and the rotation stays fair.

Within one process scans of a code queue on a lock. Across processes (here two containers
over one store) the store's version check decides: the loser's save records nothing and the
scan is run again on the new state.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID, uuid4

import pytest

from domain.customers.aggregates import Visitor
from domain.customers.application import CustomersApp, ScanResult
from domain.shared import ConcurrentUpdate, Conflict
from infra.bootstrap import Container, bootstrap
from infra.events import EventRecord
from infra.settings import Settings
from tests.factories import meta
from tests.unit.world import T0, code_of, hire, print_code, scan

THREADS = 8
SCANS_PER_THREAD = 10
ROUNDS = 12


@pytest.fixture
def other_process(settings: Settings, container: Container) -> Iterator[CustomersApp]:
    """A second application over the same store, as another API process would be."""
    other = bootstrap(settings)
    yield other.customers
    other.close()


def customers_added(log: list[EventRecord]) -> list[EventRecord]:
    """The CustomerAdded records, after checking that no identity belongs to two customers."""
    added = [r for r in log if r.name == "CustomerAdded"]
    customers_by_identity: dict[tuple[str, str], set[str]] = {}
    for record in added:
        for identity in record.data["identities"]:
            key = (identity["kind"], identity["value"])
            customers_by_identity.setdefault(key, set()).add(record.originator_id)
    assert all(len(c) == 1 for c in customers_by_identity.values()), customers_by_identity
    claims = [r.data["key"] for r in log if r.name == "IdentityClaimClaimed"]
    assert len(claims) == len(set(claims))
    return added


def test_concurrent_scans_by_distinct_visitors_all_count_and_share_no_identity(
    container: Container, app: CustomersApp
) -> None:
    hire(app, "a", "b")
    code_id = print_code(app, ["a", "b"])
    total = THREADS * SCANS_PER_THREAD

    def visit(thread: int) -> list[ScanResult]:
        return [scan(app, code_id, f"wm-{thread}-{i}") for i in range(SCANS_PER_THREAD)]

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = [r for batch in pool.map(visit, range(THREADS)) for r in batch]

    assert len(results) == total
    assert all(r.new_customer for r in results)
    assert code_of(app, code_id).scans == total
    log = container.read_log(0, 10_000)
    added = customers_added(log)
    assert len(added) == total
    assert {r.customer_id for r in results} == {r.originator_id for r in added}
    scanned = [r for r in log if r.name == "ChannelCodeScanned"]
    assert sorted(r.originator_version for r in scanned) == list(range(2, total + 2))
    assert Counter(r.assigned_staff for r in results) == {"a": total // 2, "b": total // 2}


def in_rounds(
    apps: list[CustomersApp], scan_as: Callable[[CustomersApp, int], ScanResult]
) -> list[ScanResult]:
    """Each round, every process scans at the same moment; the next round waits for all."""
    barrier = threading.Barrier(len(apps))

    def process(app: CustomersApp) -> list[ScanResult]:
        results = []
        for round_ in range(ROUNDS):
            barrier.wait(timeout=10)
            results.append(scan_as(app, round_))
        return results

    with ThreadPoolExecutor(max_workers=len(apps)) as pool:
        return [r for batch in pool.map(process, apps) for r in batch]


def test_scans_racing_from_two_processes_all_count_once(
    container: Container, app: CustomersApp, other_process: CustomersApp
) -> None:
    hire(app, "a", "b")
    code_id = print_code(app, ["a", "b"])
    apps = [app, other_process]

    results = in_rounds(apps, lambda p, n: scan(p, code_id, f"wm-{apps.index(p)}-{n}"))

    total = 2 * ROUNDS
    assert all(r.new_customer for r in results)
    assert code_of(app, code_id).scans == code_of(other_process, code_id).scans == total
    added = customers_added(container.read_log(0, 10_000))
    assert len(added) == total
    assert Counter(r.assigned_staff for r in results) == {"a": ROUNDS, "b": ROUNDS}


def test_one_visitor_scanning_from_two_processes_at_once_becomes_one_customer(
    container: Container, app: CustomersApp, other_process: CustomersApp
) -> None:
    hire(app, "a", "b")
    code_id = print_code(app, ["a", "b"])

    results = in_rounds([app, other_process], lambda p, n: scan(p, code_id, f"wm-{n}"))

    by_visitor: dict[str, list[ScanResult]] = {}
    for result in results:
        by_visitor.setdefault(result.customer_id, []).append(result)
    assert len(by_visitor) == ROUNDS
    for pair in by_visitor.values():
        assert len(pair) == 2
        assert sorted(r.new_customer for r in pair) == [False, True]
        assert len({r.assigned_staff for r in pair}) == 1
    assert code_of(app, code_id).scans == 2 * ROUNDS
    assert len(customers_added(container.read_log(0, 10_000))) == ROUNDS


def scan_on_stale_code(app: CustomersApp, other: CustomersApp, code_id: UUID) -> ScanResult:
    """Load the code, let another process scan it, then try to save on what was loaded."""
    code = code_of(app, code_id)
    scan(other, code_id, f"wm-other-{uuid4().hex[:8]}")
    assigned = code.scan(
        visitor=Visitor(identities={"openid": "o-late"}),
        customer_id=uuid4(),
        new_customer=True,
        returning_owner=None,
        available_staff={"a", "b"},
        meta=meta(at=T0),
    )
    return ScanResult(id=str(code_id), position=app.save_all(code), assigned_staff=assigned)


def test_a_save_on_a_version_another_process_moved_on_is_a_concurrent_update(
    container: Container, app: CustomersApp, other_process: CustomersApp
) -> None:
    hire(app, "a", "b")
    code_id = print_code(app, ["a", "b"])

    with pytest.raises(ConcurrentUpdate) as lost:
        scan_on_stale_code(app, other_process, code_id)

    assert isinstance(lost.value, Conflict)
    assert lost.value.code == "concurrent_update"
    assert code_of(app, code_id).scans == 1
    (last,) = container.read_log(container.head() - 1, 1)
    assert last.name == "ChannelCodeScanned"
    assert last.data["visitor_identities"] != {"openid": "o-late"}


def test_a_command_that_lost_a_race_is_run_again_on_the_new_state(
    app: CustomersApp, other_process: CustomersApp
) -> None:
    hire(app, "a", "b")
    code_id = print_code(app, ["a", "b"])
    attempts: list[int] = []

    def attempt() -> ScanResult:
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:
            return scan_on_stale_code(app, other_process, code_id)
        return scan(app, code_id, "wm-retried")

    result = app.retrying(attempt)

    assert attempts == [1, 2]
    assert result.assigned_staff == "b"  # the other process took "a"'s turn first
    assert code_of(app, code_id).scans == 2


def test_a_command_that_keeps_losing_is_answered_with_a_concurrent_update(
    app: CustomersApp, other_process: CustomersApp
) -> None:
    hire(app, "a", "b")
    code_id = print_code(app, ["a", "b"])
    attempts: list[int] = []

    def attempt() -> ScanResult:
        attempts.append(1)
        return scan_on_stale_code(app, other_process, code_id)

    with pytest.raises(ConcurrentUpdate):
        app.retrying(attempt, tries=4)

    assert len(attempts) == 4
    assert code_of(app, code_id).scans == 4  # the other process's scans, none of ours
