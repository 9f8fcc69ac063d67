"""Coupons and points through the API, on the embedded default and on PostgreSQL: a coupon
issued by staff and redeemed once, a retried redemption answering the same, the second order
refused; points earned once per reference, exchanged for a coupon, the balance as of a date;
bad input 422 naming the field, refusals 403/404/409/410, nothing recorded by any of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.e2e.conftest import Api, assert_error

SOON = (datetime.now(UTC) + timedelta(days=30)).isoformat()


def test_a_coupon_is_issued_redeemed_once_and_shown_with_its_history(api: Api) -> None:
    who = api.customer()["id"]
    staff = api.as_staff("li.na")
    r = staff.post(
        "/v1/coupons",
        {"customer_id": who, "kind": "amount_off", "value": 5_000, "min_spend": 20_000,
         "expires_at": SOON},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    code = r.json()["code"]

    first = staff.post(
        f"/v1/coupons/{code}/redemptions", {"order_ref": "T-1", "order_total": 30_000}
    )
    again = staff.post(
        f"/v1/coupons/{code}/redemptions", {"order_ref": "T-1", "order_total": 30_000}
    )
    assert first.status_code == again.status_code == 200, first.text
    assert (first.json()["discount"], first.json()["to_pay"]) == (5_000, 25_000)
    assert again.json()["position"] is None
    with api.records_nothing():
        other = {"order_ref": "T-2", "order_total": 30_000}
        assert_error(staff.post(f"/v1/coupons/{code}/redemptions", other), 409, "coupon_redeemed")

    shown = staff.get(f"/v1/coupons/{code}", params={"min_position": first.json()["position"]})
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert (body["status"], body["order_ref"], body["issuer_ref"]) == (
        "redeemed",
        "T-1",
        "staff:li.na",
    )
    assert [h["status"] for h in body["history"]] == ["issued", "redeemed"]
    mine = staff.get("/v1/coupons", params={"customer_id": who}).json()["items"]
    assert [c["code"] for c in mine] == [code]


def test_revoked_and_expired_coupons_are_gone(api: Api) -> None:
    who = api.customer()["id"]
    past = datetime.now(UTC) - timedelta(days=3)
    lapsed = api.admin.post(
        "/v1/coupons",
        {"customer_id": who, "kind": "percent_off", "value": "0.2", "valid_from": past.isoformat(),
         "expires_at": (past + timedelta(days=1)).isoformat(), "issued_by": "rule",
         "issuer_ref": "birthday"},
    ).json()  # fmt: skip
    kept = api.admin.post(
        "/v1/coupons",
        {"customer_id": who, "kind": "amount_off", "value": 1_000, "expires_at": SOON},
    ).json()
    r = api.as_manager("east").post(f"/v1/coupons/{kept['code']}/revocation", {"reason": "mistake"})
    assert r.status_code == 200, r.text
    staff = api.as_staff("li.na")
    with api.records_nothing():
        for code, error in ((lapsed["code"], "coupon_expired"), (kept["code"], "coupon_revoked")):
            assert_error(
                staff.post(f"/v1/coupons/{code}/redemptions", {"order_ref": "T", "order_total": 9}),
                410, error,
            )  # fmt: skip
        assert_error(
            staff.post(f"/v1/coupons/{kept['code']}/revocation", {"reason": "x"}), 403, "forbidden"
        )

    swept = api.admin.post(
        "/v1/coupons/expiry-sweep", headers={"X-Min-Position": str(r.json()["position"])}
    )
    assert swept.status_code == 200, swept.text
    assert swept.json()["expired"] == [lapsed["code"]]


def test_points_are_earned_once_exchanged_for_a_coupon_and_shown_as_of_a_date(api: Api) -> None:
    who = api.customer()["id"]
    staff = api.as_staff("li.na")
    base = f"/v1/customers/{who}/points"
    earned = staff.post(f"{base}/earnings", {"points": 500, "reason": "order", "ref": "order:T-1"})
    assert earned.status_code == 200 and earned.json()["balance"] == 500, earned.text
    retried = staff.post(f"{base}/earnings", {"points": 500, "reason": "order", "ref": "order:T-1"})
    assert (retried.json()["balance"], retried.json()["position"]) == (500, None)
    with api.records_nothing():
        assert_error(
            staff.post(f"{base}/spendings", {"points": 900, "reason": "gift", "ref": "gift:1"}),
            409, "insufficient_points",
        )  # fmt: skip
    exchanged = staff.post(
        f"{base}/coupon-exchanges",
        {"points": 400, "coupon": {"kind": "amount_off", "value": 2_000, "expires_at": SOON}},
    )
    assert exchanged.status_code == 201, exchanged.text
    assert exchanged.json()["balance"] == 100

    now = staff.get(base, params={"min_position": exchanged.json()["position"]}).json()
    before = staff.get(base, params={"as_of": "2020-01-01T00:00:00Z"}).json()
    assert now["balance"] == 100 and [m["delta"] for m in now["movements"]] == [-400, 500]
    assert before["balance"] == 0 and before["movements"] == []


def test_bad_requests_are_refused_naming_the_field(api: Api) -> None:
    who = api.customer()["id"]
    nobody = "7b0c7d1e-8a7e-4c55-9d1a-2a6f5a2b9e10"

    def coupon(**changes: object) -> dict[str, object]:
        base = {"customer_id": who, "kind": "amount_off", "value": 1, "expires_at": SOON}
        return base | changes

    with api.records_nothing():
        bad_rate = api.admin.post("/v1/coupons", coupon(kind="percent_off", value="2"))
        assert_error(bad_rate, 422, "invalid_input", "value")
        assert_error(api.admin.post("/v1/coupons", coupon(kind="cash")), 422, "invalid_input")
        unknown = api.admin.post("/v1/coupons", coupon(customer_id=nobody))
        assert_error(unknown, 404, "not_found")
        negative = {"points": -5, "reason": "x", "ref": "y"}
        earn = api.admin.post(f"/v1/customers/{who}/points/earnings", negative)
        assert_error(earn, 422, "invalid_input")
        assert_error(api.as_role("regulator").get("/v1/coupons"), 403, "forbidden")
        order = {"order_ref": "T", "order_total": 1}
        missing = api.admin.post("/v1/coupons/NOPE-1/redemptions", order)
        assert_error(missing, 404, "not_found")
