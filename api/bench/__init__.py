"""`scrm bench`: the figures that matter, each beside a raw baseline measured in the same run.

This is a measurement, never a timed test: it prints, and the targets are context only.
It makes its own scratch PostgreSQL database (`scrm_bench_<hex>`, on SCRM_DATABASE_URL's server)
and its own JetStream stream and subject prefix (on SCRM_NATS_URL), and removes both at the end.
Everything runs on this machine; the API, the relay and the projector run as subprocesses so
that they do not share the benchmark's GIL.

1. HTTP commands/s and latency: the real app (`create_app(container=bootstrap(settings))`)
   under uvicorn; C httpx clients (threads, keep-alive) alternate POST /v1/channel-codes/{id}/
   scans (a new visitor every time, spread over several codes) and POST /v1/customers (a new
   unionid + phone every time). Baseline: psycopg single-row INSERT transactions, C connections.
2. Direct appends: the same two commands called on CustomersApp by C threads. Same baseline.
3. Commit → read model visible: `scrm relay` and `scrm project` subprocesses; commands issued
   at a steady event rate; a watcher thread polls the projections' positions every ~1 ms and
   times each command from its return (with its position) until every projection has reached
   that position. Baseline: raw JetStream publish → receipt at the same rate (a push consumer),
   plus a pull consumer fetching exactly as the projector does, to show where the time goes.
4. Rebuild: `engine.rebuild(names, container.log_batches())`, all read models in one pass,
   then each alone, over the whole log. Baseline: reading the same log (`container.read_log`
   batches, and the raw recorder).
5. The conversation archive (`archive`): ingest with sealing and scanning on, on PostgreSQL and
   on SQLite, each beside raw batched inserts into the same database; scanning alone; where
   an ingested message's time goes. `scrm archive bench` runs this phase alone.
6. Orders (`orders`): bulk import of Taobao payloads (parsed, 500 per transaction) beside raw
   batched inserts; order pushes over HTTP to `scrm serve --workers 2` at a steady open-loop
   rate, each timed until visible in every read model through `scrm relay`, NATS and
   `scrm project`, beside raw JetStream publish → consume; the highest rate sustained when
   the one asked is not; the CPU each process spends per push. It runs before phase 5 in
   `scrm bench` (the archive's events would only lengthen the projector's catch-up);
   `scrm orders bench` runs it alone.

The modules, in the order a run uses them: `plan` (how long, how hard), `scratch` (database
and stream), `processes` (API, relay and projector subprocesses), `workload` (the commands),
`context` (what the phases share), `loop`, `openloop`, `cpu` and `baselines` (how things are
measured), the phases `commands` (1, 2), `lag` with `probes` (3), `rebuild` (4), `archive`
(5) and `orders` (6), `table` (what is printed), and `runner`, which ties them together.
`python -m api.bench HOST PORT` is phase 1's API subprocess.
"""

from api.bench.plan import row_ids
from api.bench.runner import run_archive_bench, run_bench, run_orders_bench

__all__ = ["row_ids", "run_archive_bench", "run_bench", "run_orders_bench"]
