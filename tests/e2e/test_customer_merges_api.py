"""Two customers who are one person are merged, with a reason an auditor can read; what
arrives later for either lands on the survivor; a wrong merge is undone without losing
anything recorded while it was in force."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

import pytest

from tests.e2e.conftest import Api, MakeApi, assert_error
from tests.e2e.test_orders_api import SIGNING, fixture, push
from tests.e2e.test_wecom_callback_api import WECOM, contact_xml, signed_post

PHONE = "13800138000"  # the receiver of taobao's trade_finished.json
MASKED = "138****8000"
TAOBAO_BUYER = "AAHm5d-EAAeGwJedwSHpg8bT"


@pytest.fixture
def shop(make_api: MakeApi) -> Api:
    api = make_api(**WECOM, **SIGNING)
    api.admin.staff("zhang.wei", department="east")
    api.admin.staff("li.na", department="east")
    return api


def customer(api: Api, identities: list[tuple[str, str]], tags: list[str]) -> str:
    return api.customer(identities, tags=tags, owner="zhang.wei")["id"]  # type: ignore[no-any-return]


def portrait(api: Api, cid: str, client: Any = None) -> dict[str, Any]:
    r = api.portrait(cid, client)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def two_records_of_one_person(api: Api) -> tuple[str, str]:
    """A: an openid, tag vip. B: a WeCom contact of li.na, the phone of a Taobao buyer whose
    order came in, tag spring."""
    a = customer(api, [("openid", "oA")], ["vip"])
    b = customer(api, [("wecom_external_userid", "wmB"), ("phone", PHONE)], ["spring"])
    add = contact_xml("add_external_contact", "li.na", "wmB", int(time.time()) - 60)
    assert signed_post(api, add).status_code == 200
    assert push(api, "taobao", fixture("taobao", "trade_finished")).status_code == 200
    assert portrait(api, b)["orders"]["count"] == 1
    return a, b


def merge(api: Api, a: str, b: str, client: Any = None, **body: Any) -> Any:
    return (client or api.admin).post(
        f"/v1/customers/{a}/merges", {"customer_id": b, "reason": "同一人：电话核实", **body}
    )


def test_a_merge_shows_on_the_survivor_with_the_absorbed_ones_history_and_orders(
    shop: Api,
) -> None:
    a, b = two_records_of_one_person(shop)
    manager = shop.as_role("manager", department="east", subject="li.manager")

    r = merge(shop, a, b, manager)

    assert r.status_code == 201, r.text
    done = r.json()
    assert done["id"] == a and done["absorbed_id"] == b
    assert done["position"] == shop.head()
    survivor = portrait(shop, a)
    assert {(i["kind"], i["value"]) for i in survivor["identities"]} == {
        ("openid", "oA"),
        ("wecom_external_userid", "wmB"),
        ("phone", PHONE),  # sealed under B's key, read in clear by an admin
        ("taobao_buyer", TAOBAO_BUYER),
    }
    assert survivor["tags"] == ["spring", "vip"]
    assert [c["staff_id"] for c in survivor["contacts"]] == ["li.na"]
    assert survivor["orders"]["count"] == 1  # B's buyer's order, counted once
    assert survivor["orders"]["recent"][0]["platform"] == "taobao"
    (entry,) = survivor["merges"]
    assert entry["customer_id"] == b and entry["reason"] == "同一人：电话核实"
    assert entry["merged_by"] == "user:li.manager" and entry["undone"] is False
    merged = survivor["timeline"][-1]
    assert merged["event"] == "CustomerMerged" and merged["actor"] == "user:li.manager"
    assert merged["data"]["reason"] == "同一人：电话核实"

    # The auditor reads who merged, when and why; phones masked.
    audited = portrait(shop, a, shop.as_role("auditor"))
    assert audited["merges"][0]["merged_by"] == "user:li.manager"
    assert ("phone", MASKED) in {(i["kind"], i["value"]) for i in audited["identities"]}
    assert PHONE not in str(audited["timeline"])

    absorbed = portrait(shop, b)
    assert absorbed["status"] == "merged" and absorbed["merged_into"] == a
    assert absorbed["identities"] == [] and absorbed["tags"] == []
    assert absorbed["timeline"][-1]["event"] == "CustomerMergedInto"
    assert absorbed["timeline"][-1]["data"]["reason"] == "同一人：电话核实"
    listed = shop.admin.get("/v1/customers", params={"min_position": shop.head()}).json()
    assert [c["id"] for c in listed["items"]] == [a]
    rates = shop.admin.get("/v1/dashboards/identity").json()["platforms"]
    assert [(p["buyers"], p["linked"]) for p in rates] == [(1, 1)]


def test_what_arrives_for_the_absorbed_customer_lands_on_the_survivor(shop: Api) -> None:
    a, b = two_records_of_one_person(shop)
    assert merge(shop, a, b).status_code == 201

    removed = contact_xml("del_follow_user", "li.na", "wmB", int(time.time()))
    assert signed_post(shop, removed).status_code == 200
    code = shop.admin.code(["zhang.wei"], tags=["海报"])
    scanned = shop.admin.scan(code["id"], wecom_external_userid="wmB")
    assert scanned.status_code == 201 and scanned.json()["customer_id"] == a
    again = shop.admin.post(f"/v1/customers/{a}/identities", {"kind": "phone", "value": PHONE})
    assert again.status_code == 202, again.text

    survivor = portrait(shop, a)
    assert [(c["staff_id"], c["status"]) for c in survivor["contacts"]] == [
        ("li.na", "removed_by_customer")
    ]
    assert "海报" in survivor["tags"]
    assert [t["event"] for t in portrait(shop, b)["timeline"]][-1] == "CustomerMergedInto"


def test_commands_addressed_to_the_absorbed_customer_name_the_survivor(shop: Api) -> None:
    a, b = two_records_of_one_person(shop)
    assert merge(shop, a, b).status_code == 201
    with shop.records_nothing():
        body = assert_error(
            shop.admin.post(f"/v1/customers/{b}/tags", {"add": ["x"]}), 409, "customer_merged"
        )
        assert body["merged_into"] == a and a in body["detail"]
        body = assert_error(
            shop.admin.post(f"/v1/customers/{b}/erasure-requests", {"received_via": "email"}),
            409,
            "customer_merged",
        )
        assert body["merged_into"] == a


def test_undoing_a_merge_restores_the_absorbed_customer_with_what_changed_meanwhile(
    shop: Api,
) -> None:
    a, b = two_records_of_one_person(shop)
    assert merge(shop, a, b).status_code == 201
    # While merged: li.na's contact is dropped (a callback for wmB), A gets a tag of its own.
    removed = contact_xml("del_follow_user", "li.na", "wmB", int(time.time()))
    assert signed_post(shop, removed).status_code == 200
    assert shop.admin.post(f"/v1/customers/{a}/tags", {"add": ["gold"]}).status_code == 202

    r = shop.as_role("admin", subject="wang.audit").post(
        f"/v1/customers/{a}/merges/{b}/undo", {"reason": "两个人：号码转让"}
    )

    assert r.status_code == 202, r.text
    assert r.json()["position"] == shop.head()
    restored = portrait(shop, b)
    assert restored["status"] == "active" and restored["merged_into"] is None
    assert {(i["kind"], i["value"]) for i in restored["identities"]} == {
        ("wecom_external_userid", "wmB"),
        ("phone", PHONE),
        ("taobao_buyer", TAOBAO_BUYER),
    }
    assert restored["tags"] == ["spring"]
    assert [(c["staff_id"], c["status"]) for c in restored["contacts"]] == [
        ("li.na", "removed_by_customer")
    ]
    assert restored["orders"]["count"] == 1
    assert restored["timeline"][-1]["event"] == "CustomerMergeUndone"
    survivor = portrait(shop, a)
    assert [(i["kind"], i["value"]) for i in survivor["identities"]] == [("openid", "oA")]
    assert survivor["tags"] == ["gold", "vip"] and survivor["contacts"] == []
    assert survivor["orders"]["count"] == 0
    (entry,) = survivor["merges"]
    assert entry["undone"] is True and entry["undone_by"] == "user:wang.audit"
    assert entry["undo_reason"] == "两个人：号码转让"
    assert survivor["timeline"][-1]["event"] == "CustomerUnmerged"
    listed = shop.admin.get("/v1/customers").json()["items"]
    assert {c["id"] for c in listed} == {a, b}
    # What arrives for B now is B's again.
    added = contact_xml("add_external_contact", "li.na", "wmB", int(time.time()) + 1)
    assert signed_post(shop, added).status_code == 200
    assert portrait(shop, b)["contacts"][0]["status"] == "added"

    with shop.records_nothing():
        assert_error(
            shop.admin.post(f"/v1/customers/{a}/merges/{b}/undo", {"reason": "again"}),
            409,
            "merge_not_in_force",
        )


def test_merges_that_cannot_be_are_refused_and_record_nothing(shop: Api) -> None:
    a, b = two_records_of_one_person(shop)
    c = customer(shop, [("openid", "oC")], [])
    with shop.records_nothing():
        assert_error(merge(shop, a, a), 409, "merge_into_self")
        assert_error(merge(shop, a, b, expected_versions={a: 1, b: 99}), 409, "stale_version")
        assert_error(merge(shop, a, b, reason="  "), 422, "invalid_input", "reason")
        assert_error(
            shop.admin.post(f"/v1/customers/{a}/merges", {"customer_id": b}),
            422,
            "invalid_input",
            "reason",
        )
        assert_error(
            shop.admin.post(f"/v1/customers/{a}/merges", {"reason": "x"}),
            422,
            "invalid_input",
            "customer_id",
        )
        assert_error(
            merge(shop, a, b, expected_versions={c: 1}), 422, "invalid_input", "expected_versions"
        )
        assert_error(merge(shop, a, b, shop.as_staff("zhang.wei")), 403, "forbidden")
        assert_error(merge(shop, a, b, shop.as_role("auditor")), 403, "forbidden")
        assert_error(merge(shop, a, b, shop.as_manager("west")), 403, "forbidden")
    assert merge(shop, a, b).status_code == 201
    with shop.records_nothing():
        body = assert_error(merge(shop, c, b), 409, "already_merged")
        assert body["merged_into"] == a
        body = assert_error(merge(shop, b, c), 409, "survivor_merged")
        assert body["merged_into"] == a


def test_a_customer_under_erasure_is_not_merged_and_the_survivors_erasure_covers_both(
    shop: Api,
) -> None:
    a, b = two_records_of_one_person(shop)
    held = customer(shop, [("openid", "oHeld")], [])
    r = shop.admin.post(
        "/v1/legal-holds", {"customer_id": held, "case_reference": "c-1", "authority": "court"}
    )
    assert r.status_code == 201, r.text
    r = shop.admin.post(f"/v1/customers/{held}/erasure-requests", {"received_via": "email"})
    assert r.json()["status"] == "restricted"
    with shop.records_nothing():
        assert_error(merge(shop, held, b), 410, "customer_restricted")
        assert_error(merge(shop, a, held), 410, "customer_restricted")

    assert merge(shop, a, b).status_code == 201
    r = shop.admin.post(f"/v1/customers/{a}/erasure-requests", {"received_via": "email"})
    assert r.status_code == 202 and r.json()["status"] == "erased", r.text

    # B's phone was sealed under B's key: destroyed with the survivor's erasure.
    assert_error(shop.portrait(b), 410, "customer_erased")
    assert shop.container.vault.alive({UUID(a), UUID(b)}) == set()
    assert_error(
        shop.admin.post(f"/v1/customers/{a}/merges/{b}/undo", {"reason": "x"}),
        410,
        "customer_erased",
    )
