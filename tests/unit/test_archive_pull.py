"""Pulling the msgaudit feed: resume from the stored cursor, re-pull changes nothing, recalls
that come before their message, and the batch ingest under it (one existence query)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from domain.conversations.aggregates import ArchivedMessage, ComplianceViolation, PendingRecall
from domain.conversations.feed import pull
from domain.shared import InvalidInput
from infra.bootstrap import Container
from infra.wecom.archive_feed import FeedFileError, JsonLinesFeed, WecomSdkFeed
from tests.factories import meta

CUSTOMER = "wmPullCustomer001"


def send(seq: int, text: str = "您好", msgid: str | None = None) -> dict[str, Any]:
    return {
        "seq": seq,
        "msgid": msgid or f"m-{seq}",
        "action": "send",
        "from": "zhang.wei",
        "tolist": [CUSTOMER],
        "roomid": "",
        "msgtime": 1_767_000_000_000 + seq * 1000,
        "msgtype": "text",
        "text": {"content": text},
    }


def recall(seq: int, pre_msgid: str, at_seq: int | None = None) -> dict[str, Any]:
    return {
        "seq": seq,
        "msgid": f"r-{seq}",
        "action": "recall",
        "from": "zhang.wei",
        "tolist": [CUSTOMER],
        "roomid": "",
        "msgtime": 1_767_000_000_000 + (at_seq or seq) * 1000,
        "msgtype": "revoke",
        "revoke": {"pre_msgid": pre_msgid},
    }


class ListFeed:
    """A feed over a list, recording where each fetch started; `fail_after` fetches it
    raises, as a puller that crashes mid-run."""

    def __init__(self, records: list[dict[str, Any]], fail_after: int | None = None):
        self.records = sorted(records, key=lambda r: r["seq"])
        self.fetched_after: list[int] = []
        self.fail_after = fail_after

    def fetch(self, after_seq: int, limit: int) -> list[dict[str, Any]]:
        if self.fail_after is not None and len(self.fetched_after) >= self.fail_after:
            raise ConnectionError("feed went away")
        self.fetched_after.append(after_seq)
        return [dict(r) for r in self.records if r["seq"] > after_seq][:limit]


def message(container: Container, msgid: str) -> ArchivedMessage:
    found = container.conversations.find(ArchivedMessage, ArchivedMessage.create_id(msgid))
    assert found is not None, msgid
    return found


def test_a_pull_stopped_part_way_resumes_after_the_last_batch_it_stored(
    container: Container,
) -> None:
    app = container.conversations
    records = [send(n) for n in range(1, 8)]

    first = pull(app, ListFeed(records), meta(), batch=3, max_batches=1)
    assert (first.batches, first.archived, first.last_seq) == (1, 3, 3)
    assert app.last_seq() == 3

    crashing = ListFeed(records, fail_after=1)  # stores one batch, then the feed fails
    with pytest.raises(ConnectionError):
        pull(app, crashing, meta(), batch=3)
    assert crashing.fetched_after == [3]
    assert app.last_seq() == 6

    feed = ListFeed(records)
    rest = pull(app, feed, meta(), batch=3)
    assert feed.fetched_after == [6, 7]  # resumed from the cursor; then the feed was empty
    assert (rest.batches, rest.messages, rest.archived, rest.duplicates) == (1, 1, 1, 0)
    assert rest.last_seq == 7
    stored = [e for e in container.read_log(0, 10_000) if e.name == "ArchivedMessageArchived"]
    assert sorted(e.data["msgid"] for e in stored) == [f"m-{n}" for n in range(1, 8)]


def test_pulling_again_changes_nothing(container: Container) -> None:
    app = container.conversations
    app.install_shipped_packs(meta())
    records = [send(1, "保本理财"), send(2), recall(3, "m-2")]
    done = pull(app, ListFeed(records), meta(), batch=2)
    assert (done.archived, done.recalls, done.last_seq) == (3, 1, 3)
    head = container.head()

    again = pull(app, ListFeed(records), meta(), batch=2)
    assert (again.batches, again.messages, again.last_seq) == (0, 0, 3)
    # A feed that delivers the same messages again under later seqs (an overlap): each is a
    # duplicate; only the cursor moves, and no violation or recall is recorded twice.
    overlap = [{**r, "seq": r["seq"] + 10} for r in records]
    redelivered = pull(app, ListFeed(overlap), meta(), batch=5)
    assert (redelivered.archived, redelivered.duplicates, redelivered.recalls) == (0, 3, 0)
    names = [e.name for e in container.read_log(head, 100)]
    assert names == ["ArchiveCursorBatchIngested"]
    assert app.last_seq() == 13
    violations = [e for e in container.read_log(0, 10_000) if e.name.startswith("Compliance")]
    assert [e.data["word"] for e in violations] == ["保本"]


@pytest.mark.parametrize("batch", [1, 10])
def test_a_recall_the_feed_yields_before_its_message_still_marks_it(
    container: Container, batch: int
) -> None:
    app = container.conversations
    # The recall comes first in the feed, and (for batch=10, one batch) even says it was
    # sent before the message: it is noted, and the message is marked when it arrives.
    records = [recall(1, "m-late", at_seq=0), send(2, msgid="m-late"), send(3)]

    result = pull(app, ListFeed(records), meta(), batch=batch)

    assert result.archived == 3 and result.last_seq == 3
    assert message(container, "m-late").recalled is True
    assert message(container, "m-3").recalled is False
    assert app.find(PendingRecall, PendingRecall.create_id("m-late")) is not None


def test_two_recalls_of_one_stored_message_in_one_batch_mark_it_once(
    container: Container,
) -> None:
    app = container.conversations
    pull(app, ListFeed([send(1)]), meta())
    head = container.head()

    result = pull(app, ListFeed([recall(2, "m-1"), recall(3, "m-1")]), meta())

    assert result.recalls == 2
    names = [e.name for e in container.read_log(head, 100)]
    assert names.count("ArchivedMessageRecalled") == 1
    assert message(container, "m-1").recalled is True


def test_a_feed_that_goes_backwards_is_refused_before_anything_is_stored(
    container: Container,
) -> None:
    app = container.conversations
    pull(app, ListFeed([send(5)]), meta())
    head = container.head()

    class Backwards:
        def fetch(self, after_seq: int, limit: int) -> list[dict[str, Any]]:
            return [send(4)]

    with pytest.raises(InvalidInput) as invalid:
        pull(app, Backwards(), meta())
    assert invalid.value.field == "records[0].seq"
    assert container.head() == head
    with pytest.raises(InvalidInput):
        pull(app, ListFeed([]), meta(), batch=0)


def test_the_store_answers_which_aggregates_exist_in_one_call(container: Container) -> None:
    app = container.conversations
    pull(app, ListFeed([send(n) for n in range(1, 4)]), meta())
    stored = [ArchivedMessage.create_id(f"m-{n}") for n in range(1, 4)]
    absent = [ArchivedMessage.create_id(f"never-{n}") for n in range(1200)]  # > one chunk

    assert app.existing([*absent[:600], *stored, *absent[600:], stored[0]]) == set(stored)
    assert app.existing([]) == set()


def test_violations_name_the_pack_version_and_content_stays_sealed(container: Container) -> None:
    app = container.conversations
    app.install_shipped_packs(meta())
    pull(app, ListFeed([send(1, "稳赚不赔，零风险")]), meta())

    found = {
        e.data["word"]: e.data["pack_version"]
        for e in container.read_log(0, 10_000)
        if e.name == "ComplianceViolationDetected"
    }
    assert found == {"稳赚": 1, "稳赚不赔": 1, "零风险": 1}
    archived = next(e for e in container.read_log(0, 10_000) if e.name == "ArchivedMessageArchived")
    assert "稳赚" not in orjson.dumps(archived.data).decode()
    assert archived.data["subject"] == f"wecom_external_userid:{CUSTOMER}"
    assert app.unseal(archived.data["subject"], archived.data["sealed"]) == {
        "text": {"content": "稳赚不赔，零风险"}
    }
    violation = app.find(
        ComplianceViolation, ComplianceViolation.create_id("m-1", "finance", "零风险")
    )
    assert violation is not None and violation.status == "open"


# --- the recorded feed ---------------------------------------------------------------------


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in records) + b"\n")
    return path


def test_a_jsonl_feed_serves_a_file_or_a_directory_in_seq_order(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "b.jsonl", [send(3), send(1)])
    write_jsonl(tmp_path / "a.jsonl", [send(2), send(5)])
    (tmp_path / "notes.txt").write_text("not part of the feed")

    feed = JsonLinesFeed(tmp_path)

    assert len(feed) == 4
    assert [r["seq"] for r in feed.fetch(0, 10)] == [1, 2, 3, 5]
    assert [r["seq"] for r in feed.fetch(1, 2)] == [2, 3]
    assert [r["seq"] for r in feed.fetch(3, 10)] == [5]
    assert feed.fetch(5, 10) == []
    single = JsonLinesFeed(tmp_path / "a.jsonl")
    assert [r["seq"] for r in single.fetch(0, 10)] == [2, 5]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"seq": 1, "msgid": "a"}\n{nope\n', "b.jsonl line 2 is not JSON"),
        (b'{"msgid": "a"}\n', "b.jsonl line 1 has no whole-number seq"),
        (b'{"seq": 1}\n\n{"seq": 1}\n', "b.jsonl line 3 repeats seq 1"),
    ],
)
def test_a_jsonl_feed_names_the_line_it_cannot_serve(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    (tmp_path / "b.jsonl").write_bytes(content)
    with pytest.raises(FeedFileError, match=problem):
        JsonLinesFeed(tmp_path / "b.jsonl")


def test_the_native_sdk_feed_says_it_is_not_part_of_this_build() -> None:
    with pytest.raises(NotImplementedError, match=r"libWeWorkFinanceSdk_C\.so"):
        WecomSdkFeed("corp", "secret")
