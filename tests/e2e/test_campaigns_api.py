"""Fission campaigns through the API, on the embedded default and on PostgreSQL: a manager
publishes a campaign; staff record a join, views and invitees; invitees adding staff on
WeCom's side count by themselves, a self-invitation holds the reward until a manager releases
it, once; the participant, the review queue and the funnel; refusals recording nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from domain.customers.wecom import ContactChange
from tests.e2e.conftest import Api, assert_error
from tests.factories import meta

BASE = "/v1/campaigns/spring-fx"


def definition(**changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "name": "春季裂变",
        "starts_at": (now - timedelta(days=1)).isoformat(),
        "ends_at": (now + timedelta(days=30)).isoformat(),
        "success": "contact_added",
        "tiers": [
            {"invites": 2, "reward": {"coupon": {"kind": "amount_off", "value": 2_000}}},
            {"invites": 3, "reward": {"gift": {"sku": "MUG-1", "name": "马克杯", "cost": 3_500}}},
        ],
        "landing_url": "https://h5.example.com/fx",
        **changes,
    }


def adds_staff(api: Api, external_userid: str) -> None:
    """WeCom's add_external_contact callback, as infra/wecom hands it to the domain."""
    api.container.customers.apply_contact_change(
        ContactChange(
            "add_external_contact", "zhang.wei", external_userid, f"d-{external_userid}",
            datetime.now(UTC),
        ),
        meta("integration:wecom", source="wecom"),
    )  # fmt: skip


def test_a_campaign_from_publishing_to_a_released_reward(api: Api) -> None:
    manager = api.as_manager("east")
    r = manager.put(BASE, {"definition": definition(), "expected_version": 0})
    assert r.status_code == 201, r.text
    a, b = (api.customer([("wecom_external_userid", f"wm-{n}")])["id"] for n in "ab")
    staff = api.as_staff("zhang.wei")

    r = staff.post(f"{BASE}/participants", {"customer_id": a})
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    assert r.json()["link"] == f"https://h5.example.com/fx?invite={code}"
    assert staff.post(f"{BASE}/participants", {"customer_id": a}).json()["position"] is None
    assert staff.post(f"{BASE}/views", {"code": code}).status_code == 202
    r = staff.post(f"{BASE}/invitations", {"code": code, "customer_id": a, "device": "fp-1"})
    assert r.status_code == 201 and r.json()["flags"] == ["self_invite"], r.text
    r = staff.post(
        f"{BASE}/invitations", {"code": code, "customer_id": b, "device": "fp-2", "ip": "10.0.0.9"}
    )
    assert r.status_code == 201, r.text
    assert (r.json()["depth"], r.json()["path"], r.json()["flags"]) == (1, [a, b], [])
    adds_staff(api, "wm-a")
    adds_staff(api, "wm-b")
    api.settle()

    shown = staff.get(f"{BASE}/participants/{a}").json()
    assert shown["successful_invites"] == 2
    assert [(x["tier"], x["status"], x["reasons"]) for x in shown["rewards"]] == [
        (2, "held", ["self_invite"])
    ]
    held = manager.get(f"{BASE}/rewards", params={"status": "held"}).json()["items"]
    assert [x["customer_id"] for x in held] == [a]

    release = f"{BASE}/participants/{a}/rewards/2/release"
    r = manager.post(release, {"note": "a family account, checked"})
    assert r.status_code == 200, r.text
    with api.records_nothing():
        assert_error(manager.post(release, {}), 409, "reward_issued")
    coupon = manager.get(f"{BASE}/rewards", params={"status": "issued"}).json()["items"][0]
    shown_coupon = staff.get(f"/v1/coupons/{coupon['coupon_code']}").json()
    assert (shown_coupon["customer_id"], shown_coupon["issued_by"]) == (a, "campaign")

    stats = staff.get(f"{BASE}/stats").json()
    assert stats["funnel"] == {
        "views": 1, "joins": 2, "invitees": 1, "successful_invites": 2, "rewards": 1,
    }  # fmt: skip
    assert stats["cost_per_acquired_customer"] == 1_000
    assert stats["propagation"]["depth"] == 1
    assert staff.get(BASE).json()["in_force"] == 1


def test_refusals_record_nothing(api: Api) -> None:
    manager, staff = api.as_manager("east"), api.as_staff("li.na")
    assert manager.put(BASE, {"definition": definition()}).status_code == 201
    a, b, c = (api.customer([("openid", f"o-{n}")])["id"] for n in "abc")
    code = staff.post(f"{BASE}/participants", {"customer_id": a}).json()["code"]
    staff.post(f"{BASE}/participants", {"customer_id": c})  # joined on their own
    ended = definition(starts_at="2025-01-01T00:00:00+08:00", ends_at="2025-02-01T00:00:00+08:00")
    assert manager.put("/v1/campaigns/over", {"definition": ended}).status_code == 201
    with api.records_nothing():
        assert_error(manager.put(BASE, {"definition": definition(), "expected_version": 0}),
                     409, "stale_version")  # fmt: skip
        assert_error(manager.put(BASE, {"definition": definition(budget=-5)}), 422,
                     "invalid_input", field="budget")  # fmt: skip
        assert_error(staff.put(BASE, {"definition": definition()}), 403, "forbidden")
        assert_error(staff.post(f"{BASE}/participants", {"customer_id": "nobody"}), 422,
                     "invalid_input", field="customer_id")  # fmt: skip
        assert_error(
            staff.post("/v1/campaigns/over/participants", {"customer_id": a}), 410,
            "campaign_ended",
        )  # fmt: skip
        assert_error(staff.post(f"{BASE}/invitations", {"customer_id": b}), 422,
                     "invalid_input", field="code")  # fmt: skip
        assert_error(staff.post(f"{BASE}/invitations", {"code": "ZZZZZZZZZZ", "customer_id": b}),
                     404, "not_found")  # fmt: skip
        assert_error(staff.post(f"{BASE}/invitations", {"code": code, "customer_id": c}),
                     409, "already_participant", field="customer_id")  # fmt: skip
        assert_error(manager.post(f"{BASE}/participants/{a}/rewards/2/release", {}), 404,
                     "not_found")  # fmt: skip
        assert_error(api.as_role("auditor").post(f"{BASE}/views", {}), 403, "forbidden")
        assert_error(staff.get("/v1/campaigns/none/stats"), 404, "not_found")
