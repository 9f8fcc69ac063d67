"""How long and how hard each phase runs (full and quick), and the row ids a run prints."""

from __future__ import annotations

from dataclasses import dataclass

EVENTS_PER_COMMAND = 3  # scan of a new visitor: CustomerAdded, IdentityClaimClaimed,
# ChannelCodeScanned; add customer with unionid + phone: CustomerAdded + two claims.
LAG_EVENTS_PER_COMMAND = 5  # phase 3: visitors and customers known by three or four identities


@dataclass(frozen=True)
class Plan:
    clients: int = 8  # concurrent HTTP clients / command threads / INSERT connections
    codes: int = 16  # channel codes per phase (several, to limit contention on one code)
    staff: int = 12
    insert_seconds: float = 8.0
    warmup: float = 2.0
    http_seconds: float = 15.0
    direct_seconds: float = 10.0
    lag_rate: int = 1000  # events/s; the raw bus baseline runs at this rate
    lag_seconds: float = 15.0
    lag_issuers: int = 8
    # Steady-load runs of phase 3 through `scrm relay` and `scrm project`, in events/s.
    lag_rates: tuple[int, ...] = (1000, 300)
    poll_interval: float = 0.001
    catch_up_timeout: float = 150.0
    min_log_events: int = 20_000
    startup_timeout: float = 30.0
    # Phase 6 (orders): bulk import size; order pushes/s over HTTP and for how long, with
    # how many requests in flight at most; API processes (`scrm serve --workers`); runs at
    # lower rates looking for the highest one sustained when orders_rate is not, and how
    # long each; customers whose phones the pushed orders' receivers share.
    orders_import: int = 10_000
    orders_rate: int = 500
    orders_seconds: float = 15.0
    orders_concurrency: int = 64
    orders_workers: int = 2
    orders_search: int = 2
    orders_search_seconds: float = 10.0
    orders_customers: int = 1_000
    # The visibility watcher's poll in phase 6: every poll is a query, and at ~1,000 a second
    # it would take a tenth of this machine's CPU from the system it measures.
    orders_poll_interval: float = 0.002
    # Phase 5: archive messages ingested (sealed and scanned) on each store.
    archive_messages: int = 20_000


FULL = Plan()
QUICK = Plan(
    insert_seconds=1.0,
    warmup=0.3,
    http_seconds=1.5,
    direct_seconds=1.0,
    lag_rate=300,
    lag_seconds=1.5,
    lag_issuers=4,
    lag_rates=(300,),
    catch_up_timeout=40.0,
    min_log_events=2_000,
    orders_import=1_000,
    orders_rate=100,
    orders_seconds=2.0,
    orders_concurrency=16,
    orders_search=1,
    orders_search_seconds=1.5,
    orders_customers=50,
    archive_messages=2_000,
)


ARCHIVE_ROWS = ["5a", "5b", "5c", "5d"]
ORDERS_ROWS = ["6a", "6b", "6c", "6d", "6e", "6f", "6g"]


def row_ids(quick: bool) -> list[str]:
    """The row ids a complete run prints (the smoke test checks them)."""
    from projections import all_projections

    plan = QUICK if quick else FULL
    lag = [f"3{chr(ord('a') + k)}" for k in range(3 * len(plan.lag_rates) + 1)]
    rebuild = [f"4{chr(ord('a') + k)}" for k in range(len(all_projections()) + 2)]
    return ["1a", "1b", "1c", "1d", "2a", "2b", "2c", *lag, *rebuild, *ARCHIVE_ROWS, *ORDERS_ROWS]
