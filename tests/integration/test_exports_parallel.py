"""A long log is exported by one process per core, each writing its own range; the parts put
back together are exactly what one process writes: the same lines in the same order, the same
Merkle root, names as they were at each point even where a range begins mid-log."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from domain.audit.exports import export_scope
from domain.shared import ERASED, Conflict
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


def test_a_customer_erased_while_an_export_is_written_refuses_it_and_records_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    """Values are opened with the keys as they were when the export began (each asked of the
    key store once): a customer erased meanwhile could be in it in clear, so it is refused,
    leaves nothing behind, and a second run redacts them."""
    ids = _seed(settings)
    c = bootstrap(settings)
    erased: list[int] = []

    def erase_part_way(done: int) -> None:
        if not erased:
            erase(settings, ids["kept"])  # a real erasure, from another container
            erased.append(done)

    try:
        before = c.head()
        with pytest.raises(Conflict) as refused:
            exports.produce(
                c,
                WINDOW,
                tmp_path / "exports" / "out",
                requested_by="user:r",
                role="admin",
                meta=meta(),
                progress=erase_part_way,
            )
        assert refused.value.code == "erased_during_export"
        assert erased
        assert list((tmp_path / "exports").iterdir()) == []  # no work directory left either
        recorded = [r.name for r in c.read_log(before, 100)]
        assert "ArchiveExportProduced" not in recorded

        again = exports.produce(
            c, WINDOW, tmp_path / "again", requested_by="user:r", role="admin", meta=meta()
        )
    finally:
        c.close()
    assert again.events > 0
    kept = f"customer:{ids['kept']}"
    for line in _lines(tmp_path / "again"):
        row = orjson.loads(line)
        if kept in row["names"]:
            assert row["erased"] and row["names"][kept] == [ERASED]


def test_what_is_worked_out_once_per_shape_of_event_changes_nothing_when_forgotten(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The people of each shape of event are kept for a bounded number of shapes: an export
    that forgets them at every new shape writes the same lines."""
    ids = _seed(settings)
    erase(settings, ids["gone"])
    c = bootstrap(settings)
    try:
        kept = exports.produce(
            c, WINDOW, tmp_path / "kept", requested_by="user:r", role="admin", meta=meta()
        )
        monkeypatch.setattr(exports, "SHAPES_KEPT", 1)
        forgot = exports.produce(
            c, WINDOW, tmp_path / "forgot", requested_by="user:r", role="admin", meta=meta()
        )
    finally:
        c.close()
    lines = _lines(tmp_path / "kept")
    assert _lines(tmp_path / "forgot")[: len(lines)] == lines
    # The first export's own records: produced, the chain started and extended.
    assert forgot.events == kept.events + 3
