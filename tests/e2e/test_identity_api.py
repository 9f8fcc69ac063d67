"""A buyer's orders follow into the customer's portrait once something verified links them:
the same phone (keyed hash), the same unionid, or staff binding the buyer explicitly."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Api, MakeApi
from tests.e2e.test_orders_api import SIGNING, fixture, push

TAOBAO_BUYER = "AAHm5d-EAAeGwJedwSHpg8bT"  # trade_finished.json, receiver phone 13800138000
JD_BUYER = "oWQ1ZmFjZGUtYjY0Ni00ZmFhLWJjNTQtM2Y1"  # finished.json, another phone


def customer_with_phone(api: Api, phone: str, owner: str = "zhang.wei") -> str:
    api.admin.staff(owner, department="east")
    r = api.admin.post(
        "/v1/customers", {"identities": [{"kind": "phone", "value": phone}], "owner": owner}
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]  # type: ignore[no-any-return]


def portrait(api: Api, client: Any, cid: str) -> dict[str, Any]:
    r = client.get(f"/v1/customers/{cid}/portrait", params={"min_position": api.container.head()})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_an_order_from_the_same_phone_shows_on_the_staff_members_portrait(
    make_api: MakeApi,
) -> None:
    api = make_api(**SIGNING)
    cid = customer_with_phone(api, "138 0013 8000")
    assert push(api, "taobao", fixture("taobao", "trade_finished")).status_code == 200
    seen = portrait(api, api.as_staff("zhang.wei"), cid)
    assert seen["orders"]["count"] == 1
    assert seen["orders"]["lifetime_value"] == 26_000
    assert seen["orders"]["recent"][0]["platform"] == "taobao"
    linked = [t for t in seen["timeline"] if t["event"] == "CustomerIdentityLinked"]
    assert linked and linked[0]["data"] == {
        "kind": "taobao_buyer",
        "value": TAOBAO_BUYER,
        "matched_by": "phone",
    }
    # The phone never travels in clear: the link says how it matched, not what matched.
    assert "13800138000" not in str(linked[0]["data"])


def test_a_pending_buyer_follows_when_staff_bind_them_and_the_dashboard_counts_it(
    make_api: MakeApi,
) -> None:
    api = make_api(**SIGNING)
    cid = customer_with_phone(api, "13800138000")
    push(api, "taobao", fixture("taobao", "trade_finished"))
    push(api, "jd", fixture("jd", "finished"))
    rates = api.admin.get(
        "/v1/dashboards/identity", params={"min_position": api.container.head()}
    ).json()["platforms"]
    assert {r["platform"]: (r["buyers"], r["linked"]) for r in rates} == {
        "jd": (1, 0),
        "taobao": (1, 1),
    }
    assert portrait(api, api.admin, cid)["orders"]["count"] == 1

    r = api.admin.post(f"/v1/customers/{cid}/identities", {"kind": "jd_buyer", "value": JD_BUYER})
    assert r.status_code == 202, r.text
    orders = portrait(api, api.admin, cid)["orders"]
    assert orders["count"] == 2
    assert {o["platform"] for o in orders["recent"]} == {"taobao", "jd"}
    rates = api.admin.get(
        "/v1/dashboards/identity", params={"min_position": api.container.head()}
    ).json()["platforms"]
    assert {r["platform"]: r["match_rate"] for r in rates} == {"jd": 1.0, "taobao": 1.0}
    assert api.as_staff("zhang.wei").get("/v1/dashboards/identity").status_code == 403


def test_a_buyer_bound_to_one_customer_cannot_be_bound_to_another(make_api: MakeApi) -> None:
    api = make_api(**SIGNING)
    first = customer_with_phone(api, "13800138000")
    push(api, "taobao", fixture("taobao", "trade_finished"))  # linked to `first` by phone
    other = customer_with_phone(api, "13900000000", owner="li.na")
    r = api.admin.post(
        f"/v1/customers/{other}/identities", {"kind": "taobao_buyer", "value": TAOBAO_BUYER}
    )
    assert r.status_code == 409 and r.json()["error"] == "identity_taken"
    assert portrait(api, api.admin, first)["orders"]["count"] == 1


def test_a_customer_who_asked_to_be_erased_is_not_linked(make_api: MakeApi) -> None:
    api = make_api(**SIGNING)
    cid = customer_with_phone(api, "13800138000")
    r = api.admin.post(f"/v1/customers/{cid}/erasure-requests", {"received_via": "phone"})
    assert r.status_code == 202, r.text
    assert push(api, "taobao", fixture("taobao", "trade_finished")).status_code == 200
    assert not [e for e in api.container.read_log(0, 100_000) if e.name == "CustomerIdentityLinked"]


def test_erasing_a_customer_erases_the_receivers_of_their_linked_orders(make_api: MakeApi) -> None:
    api = make_api(**SIGNING)
    cid = customer_with_phone(api, "13800138000")
    (outcome,) = push(api, "taobao", fixture("taobao", "trade_finished")).json()["orders"]
    path = f"/v1/orders/{outcome['order_id']}"
    before = api.admin.get(path, params={"min_position": api.container.head()}).json()
    assert before["receiver"]["phone"] == "13800138000"
    r = api.admin.post(f"/v1/customers/{cid}/erasure-requests", {"received_via": "app"})
    assert r.json()["status"] == "erased" and r.json()["keys_destroyed"] == 2  # own + buyer
    assert api.admin.get(path).json()["receiver"] == "[erased]"


def test_orders_that_came_first_follow_when_the_customer_appears_later(make_api: MakeApi) -> None:
    api = make_api(**SIGNING)
    push(api, "taobao", fixture("taobao", "trade_finished"))  # buyer pending: no customer yet
    api.container.engine.wait_for(api.container.head(), 5)
    cid = customer_with_phone(api, "13800138000")
    seen = portrait(api, api.admin, cid)
    assert seen["orders"]["count"] == 1
    (linked,) = [t for t in seen["timeline"] if t["event"] == "CustomerIdentityLinked"]
    assert linked["actor"] == "system:identity" and linked["data"]["matched_by"] == "phone"


def test_the_scheduled_process_links_buyers_a_later_identity_matches(make_api: MakeApi) -> None:
    from infra.jobs import link_pending_buyers
    from tests.factories import meta

    api = make_api(**SIGNING)
    push(api, "jd", fixture("jd", "finished"))  # receiver phone 13912345678
    api.container.engine.wait_for(api.container.head(), 5)
    assert link_pending_buyers(api.container) == 0  # nobody to match yet
    # A customer recorded by another path (an import, another process): nothing links yet.
    added = api.container.customers.add_customer(
        identities=[("phone", "13912345678")], tags=[], owner=None, meta=meta()
    )
    api.container.engine.wait_for(api.container.head(), 5)
    assert link_pending_buyers(api.container) == 1
    assert portrait(api, api.admin, added.id)["orders"]["count"] == 1
    api.container.engine.wait_for(api.container.head(), 5)
    assert link_pending_buyers(api.container) == 0  # nothing left pending: idempotent
