"""Keyword search over the sealed archive: Chinese substrings, scoped like every archive read,
on record, and the index never holds the words."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.e2e.conftest import Api
from tests.e2e.test_archive_api import (
    CUSTOMER_EXT,
    OTHER_EXT,
    archive,  # noqa: F401 (fixture)
    customer_id,
    ingest,
    line,
    read,
)

MORE = [
    # Every bigram of 保本理财 is here, but not the word itself: the index alone would say yes.
    line("msg-6", 6, "zhang.wei", [CUSTOMER_EXT], "本理财 保本", at=1_767_000_400_000),
    line("msg-7", 7, "li.na", [OTHER_EXT], "ＡＮＯＴＨＥＲ 保 本 产品", at=1_767_000_500_000),
]


@pytest.fixture
def searchable(archive: Api) -> Api:  # noqa: F811
    assert ingest(archive, MORE).status_code == 201
    return archive


def search(api: Api, client: Any, keyword: str, **params: Any) -> Any:
    return read(client, keyword=keyword, min_position=api.container.head(), **params)


def hits(api: Api, client: Any, keyword: str, **params: Any) -> list[str]:
    r = search(api, client, keyword, **params)
    assert r.status_code == 200, r.text
    assert r.json()["complete"] is True
    return [m["msgid"] for m in r.json()["items"]]


def test_a_chinese_substring_is_found_without_a_word_segmenter(searchable: Api) -> None:
    admin = searchable.admin
    assert hits(searchable, admin, "稳赚") == ["msg-2"]
    assert hits(searchable, admin, "理财了解") == ["msg-1"]
    # The index offers msg-6 too (all the bigrams); decrypting it shows the word is not there.
    assert hits(searchable, admin, "保本理财") == ["msg-1"]


def test_width_case_and_separators_do_not_hide_a_match(searchable: Api) -> None:
    admin = searchable.admin
    assert hits(searchable, admin, "another") == ["msg-4", "msg-7"]
    # 保 本 with a space still reads 保本
    assert hits(searchable, admin, "保本") == ["msg-1", "msg-6", "msg-7"]


def test_file_references_are_not_searchable_text(searchable: Api) -> None:
    assert hits(searchable, searchable.admin, "CtYBMzA2") == []


def test_search_keeps_to_what_the_caller_may_read(searchable: Api) -> None:
    mine = customer_id(searchable, CUSTOMER_EXT)
    theirs = customer_id(searchable, OTHER_EXT)
    zhang = searchable.as_staff("zhang.wei")
    assert hits(searchable, zhang, "保本", customer_id=mine) == ["msg-1", "msg-6"]
    assert search(searchable, zhang, "保本", customer_id=theirs).status_code == 403
    assert (
        search(searchable, zhang, "保本").status_code == 403
    )  # staff search one customer at a time
    assert hits(searchable, searchable.as_role("auditor"), "保本", staff_id="li.na") == ["msg-7"]
    assert search(searchable, searchable.as_role("regulator"), "保本").status_code == 403


def test_search_combines_with_time_range(searchable: Api) -> None:
    assert hits(searchable, searchable.admin, "保本", since="2025-12-29T09:27:00+00:00") == [
        "msg-7"
    ]
    r = search(searchable, searchable.admin, "保本", since="2025-12-29T09:25:00")
    assert r.status_code == 422 and r.json()["field"] == "since"


@pytest.mark.parametrize("keyword", ["保", " - ", "x" * 101])
def test_a_keyword_too_short_or_long_is_422_and_records_nothing(
    searchable: Api, keyword: str
) -> None:
    head = searchable.container.head()
    r = search(searchable, searchable.admin, keyword)
    assert r.status_code == 422 and r.json()["field"] == "keyword", r.text
    assert searchable.container.head() == head


def test_a_search_is_on_record_with_its_keyword_sealed(searchable: Api) -> None:
    assert hits(searchable, searchable.admin, "稳赚") == ["msg-2"]
    access = [e for e in searchable.container.read_log(0, 100_000) if e.name == "ArchiveAccessed"]
    assert access[-1].data["message_ids"] == ["msg-2"]
    assert "稳赚" not in orjson.dumps(access[-1].data).decode()
    log = searchable.as_role("auditor").get(
        "/v1/audit/archive-access", params={"min_position": searchable.container.head()}
    )
    assert log.json()["items"][-1]["query"]["keyword"] == "稳赚"


def test_the_index_holds_no_words(searchable: Api) -> None:
    searchable.container.start_follower().catch_up()
    db = searchable.container.read_db
    terms = db.query("SELECT term, message_id FROM search_terms")
    assert len(terms) > 20 and all(isinstance(t, int) for t, _ in terms)
    for table in ("search_terms", "search_documents"):
        dumped = orjson.dumps([list(r) for r in db.query(f"SELECT * FROM {table}")]).decode()
        assert "稳赚" not in dumped and "保本" not in dumped


def test_a_large_archive_pages_through_candidates(api: Api) -> None:
    # 300 messages share every bigram of 稳赚不赔 but only every 50th holds the phrase.
    records = [
        line(
            f"bulk-{n}",
            n + 1,
            "zhang.wei",
            [CUSTOMER_EXT],
            "稳赚不赔" if n % 50 == 0 else "赔 稳赚 赚不",
            at=1_767_000_000_000 + n * 1000,
        )
        for n in range(300)
    ]
    assert ingest(api, records).status_code == 201
    assert hits(api, api.admin, "稳赚不赔", limit=5) == [f"bulk-{n}" for n in range(0, 250, 50)]
    assert hits(api, api.admin, "稳赚不赔", limit=100) == [f"bulk-{n}" for n in range(0, 300, 50)]
