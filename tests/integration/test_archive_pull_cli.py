"""`scrm archive pull` as an operator runs it, on PostgreSQL: resume after a crash from the
stored cursor, and a re-run that changes nothing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from infra.bootstrap import bootstrap
from infra.event_recorder import ColumnArraysRecorder
from infra.settings import Settings
from tests.integration.support import scrm

pytestmark = pytest.mark.integration


def record(seq: int) -> dict[str, Any]:
    base = {
        "seq": seq,
        "msgid": f"pull-{seq}",
        "from": "zhang.wei",
        "tolist": ["wmPullCli000001"],
        "roomid": "",
        "msgtime": 1_767_000_000_000 + seq * 1000,
    }
    if seq == 4:  # recalls seq 6, which the feed yields later (and in a later batch)
        return {**base, "action": "recall", "msgtype": "revoke", "revoke": {"pre_msgid": "pull-6"}}
    return {**base, "action": "send", "msgtype": "text", "text": {"content": f"第{seq}条，保本"}}


def write(path: Path, seqs: range) -> None:
    path.write_bytes(b"\n".join(orjson.dumps(record(n)) for n in seqs))


def figures(stdout: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"(\w[\w ]*?) (\d+)(?:,|$)", stdout.strip())}


def state(settings: Settings) -> tuple[int, int, bool]:
    """(head, cursor, whether pull-6 is marked recalled)."""
    from domain.conversations.aggregates import ArchivedMessage

    c = bootstrap(settings)
    try:
        assert isinstance(c.conversations.recorder, ColumnArraysRecorder)
        late = c.conversations.find(ArchivedMessage, ArchivedMessage.create_id("pull-6"))
        return c.head(), c.conversations.last_seq(), bool(late and late.recalled)
    finally:
        c.close()


def test_archive_pull_resumes_from_the_stored_cursor_and_a_rerun_changes_nothing(
    pg_settings: Settings, tmp_path: Path
) -> None:
    feed = tmp_path / "feed"
    feed.mkdir()
    # The puller crashed after storing what it had fetched so far: seqs 1-5.
    write(feed / "0001.jsonl", range(1, 6))
    first = scrm(pg_settings, "archive", "pull", "--from-file", str(feed), "--batch", "2")
    assert first.returncode == 0, first.stderr
    assert figures(first.stdout) == {
        "batches": 3,
        "messages": 5,
        "archived": 5,
        "duplicates": 0,
        "recalls": 0,
        "last seq": 5,
    }
    head, cursor, recalled = state(pg_settings)
    assert cursor == 5 and not recalled

    # The recorded feed has grown (seqs 6-9, in another file); the pull resumes after 5.
    write(feed / "0002.jsonl", range(6, 10))
    second = scrm(pg_settings, "archive", "pull", "--from-file", str(feed), "--batch", "2")
    assert second.returncode == 0, second.stderr
    assert figures(second.stdout) == {
        "batches": 2,
        "messages": 4,
        "archived": 4,
        "duplicates": 0,
        "recalls": 0,
        "last seq": 9,
    }
    head, cursor, recalled = state(pg_settings)
    assert cursor == 9 and recalled  # the recall at seq 4 marked pull-6 when it arrived

    again = scrm(pg_settings, "archive", "pull", "--from-file", str(feed))
    assert again.returncode == 0, again.stderr
    assert figures(again.stdout)["batches"] == 0 and figures(again.stdout)["last seq"] == 9
    assert state(pg_settings) == (head, 9, True)


def test_archive_pull_names_a_bad_feed_line_and_stores_nothing(
    pg_settings: Settings, tmp_path: Path
) -> None:
    feed = tmp_path / "bad.jsonl"
    feed.write_text('{"seq": 1, "msgid": "a"}\n{"msgid": "no seq"}\n')
    result = scrm(pg_settings, "archive", "pull", "--from-file", str(feed))
    assert result.returncode == 2
    assert "bad.jsonl line 2 has no whole-number seq" in result.stderr
    invalid = tmp_path / "invalid.jsonl"
    invalid.write_text('{"seq": 1, "msgid": "a", "action": "send"}\n')
    result = scrm(pg_settings, "archive", "pull", "--from-file", str(invalid))
    assert result.returncode == 2 and "records[0].tolist" in result.stderr
    assert "resumes after seq 0" in result.stderr
