"""Corp customer tags (企业客户标签) from WeCom's change_external_tag callbacks: on record once,
in order, final once deleted."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from domain.customers.application import CustomersApp
from domain.customers.corp_tags import CorpTag, TagChange
from domain.inbox import InboxOutcome
from domain.shared import InvalidInput
from infra.bootstrap import Container
from tests.factories import meta
from tests.unit.world import T0, names_in_log


def tag_change(
    app: CustomersApp,
    at: int,
    change_type: str,
    tag_id: str = "etTAG1",
    tag_type: str | None = "tag",
    strategy_id: str | None = None,
) -> InboxOutcome:
    return app.apply_tag_change(
        TagChange(
            change_type=change_type,
            tag_id=tag_id,
            tag_type=tag_type,
            digest=f"{change_type}:{tag_type}:{tag_id}:{at}:{strategy_id}",
            strategy_id=strategy_id,
        ),
        meta(actor="integration:wecom", source="wecom", at=T0 + timedelta(seconds=at)),
    )


def tag_of(app: CustomersApp, tag_id: str = "etTAG1", tag_type: str = "tag") -> CorpTag:
    return app.load(CorpTag, CorpTag.create_id(tag_type, tag_id), "tag")


def test_a_tag_created_changed_and_deleted_is_on_record(
    app: CustomersApp, container: Container
) -> None:
    assert tag_change(app, 0, "create", strategy_id="7").outcome == "applied"
    assert tag_change(app, 10, "update").outcome == "applied"
    assert tag_change(app, 20, "delete").outcome == "applied"

    assert [n for n in names_in_log(container) if n.startswith("CorpTag")] == [
        "CorpTagCreated",
        "CorpTagUpdated",
        "CorpTagDeleted",
    ]
    tag = tag_of(app)
    assert (tag.tag_type, tag.tag_id, tag.strategy_id, tag.deleted) == ("tag", "etTAG1", "7", True)


def test_the_same_callback_twice_has_one_effect(app: CustomersApp, container: Container) -> None:
    tag_change(app, 0, "create")
    head = container.head()

    assert tag_change(app, 0, "create").outcome == "duplicate"
    assert container.head() == head


def test_a_late_change_after_deletion_is_stale(app: CustomersApp, container: Container) -> None:
    tag_change(app, 0, "create")
    tag_change(app, 20, "delete")
    before = container.head()

    assert tag_change(app, 10, "update").outcome == "stale"
    assert names_in_log(container, before) == ["InboxReceiptReceived"]


def test_a_deletion_heard_first_makes_the_late_create_stale(
    app: CustomersApp, container: Container
) -> None:
    tag_change(app, 20, "delete", tag_type="tag_group", tag_id="etGROUP")

    assert tag_change(app, 0, "create", tag_type="tag_group", tag_id="etGROUP").outcome == "stale"
    created = container.read_log(0, 1)[0]
    assert (created.name, created.data["first_change"]) == ("CorpTagCreated", "delete")
    assert tag_of(app, "etGROUP", "tag_group").deleted


def test_an_older_update_arriving_after_a_newer_one_is_stale(app: CustomersApp) -> None:
    tag_change(app, 0, "create")
    tag_change(app, 20, "update", strategy_id="2")

    assert tag_change(app, 10, "update", strategy_id="1").outcome == "stale"
    assert tag_of(app).strategy_id == "2"


def test_a_tag_and_a_tag_group_with_the_same_id_are_two_records(app: CustomersApp) -> None:
    tag_change(app, 0, "create", tag_type="tag", tag_id="etSAME")
    tag_change(app, 0, "create", tag_type="tag_group", tag_id="etSAME")

    assert tag_of(app, "etSAME", "tag").id != tag_of(app, "etSAME", "tag_group").id


def test_a_shuffle_is_recorded_on_its_group_or_on_every_group(
    app: CustomersApp, container: Container
) -> None:
    tag_change(app, 0, "shuffle", tag_id="etGROUP", tag_type=None)
    tag_change(app, 10, "shuffle", tag_id="", tag_type=None)

    shuffled = [r for r in container.read_log(0, 100) if r.name == "CorpTagCreated"]
    assert [(r.data["tag_type"], r.data["tag_id"]) for r in shuffled] == [
        ("tag_group", "etGROUP"),
        ("tag_group", "*"),
    ]
    assert names_in_log(container).count("CorpTagShuffled") == 2


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"change_type": "create", "tag_id": "etA", "tag_type": None}, "TagType"),
        ({"change_type": "create", "tag_id": "etA", "tag_type": "label"}, "TagType"),
        ({"change_type": "delete", "tag_id": "", "tag_type": "tag"}, "Id"),
        ({"change_type": "rename", "tag_id": "etA", "tag_type": "tag"}, "ChangeType"),
        ({"change_type": "create", "tag_id": "et A", "tag_type": "tag"}, "Id"),
    ],
)
def test_a_malformed_tag_change_names_its_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        TagChange(digest="d", **fields)
    assert refused.value.field == field
