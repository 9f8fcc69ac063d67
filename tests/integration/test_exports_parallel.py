"""A long log is exported by one process per core, each writing its own range; the parts put
back together are exactly what one process writes: the same lines in the same order, the same
Merkle root, names as they were at each point even where a range begins mid-log."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import orjson

from domain.audit.exports import export_scope
from infra import exports
from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.factories import erase, meta
from tests.integration.test_exports_cli import _seed

WINDOW = export_scope(datetime(2020, 1, 1, tzinfo=UTC), datetime(2099, 1, 1, tzinfo=UTC))


def _lines(out: Path) -> list[bytes]:
    return [
        line for seg in sorted((out / "events").iterdir()) for line in seg.read_bytes().splitlines()
    ]


def test_ranges_written_in_parallel_equal_one_process(settings: Settings, tmp_path: Path) -> None:
    ids = _seed(settings)
    erase(settings, ids["gone"])
    c = bootstrap(settings)
    try:
        one = exports.produce(
            c, WINDOW, tmp_path / "one", requested_by="user:r", role="admin", meta=meta()
        )
        # Everything again, now by two processes (parallel_from=1: whatever the log's size).
        many = exports.produce(
            c,
            WINDOW,
            tmp_path / "many",
            requested_by="user:r",
            role="admin",
            meta=meta(),
            parallel_from=1,
        )
    finally:
        c.close()
    sequential, parallel = _lines(tmp_path / "one"), _lines(tmp_path / "many")
    # The parallel export's cut is later by the first export's own record.
    extra = [orjson.loads(x)["event"] for x in parallel[len(sequential) :]]
    assert parallel[: len(sequential)] == sequential
    assert sorted(extra) == ["ArchiveExportProduced", "ExportChainExtended", "ExportChainStarted"]
    if (os.cpu_count() or 1) >= 2:  # one range per core
        assert len(list((tmp_path / "many" / "events").iterdir())) >= 2
    assert exports.verify_export(tmp_path / "many").ok
    assert many.events == one.events + 3
    manifest = orjson.loads((tmp_path / "many" / "manifest.json").read_bytes())
    assert manifest["erased_customers"] >= 1
