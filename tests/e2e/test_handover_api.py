"""Staff handover through the API, on the embedded default and on PostgreSQL: a manager hands a
colleague's customers round-robin within the department, WeCom refuses one (pending with its
reason), a retry to another colleague completes it, a repeated retry records nothing, and the
new owner reads the customer; impossible requests are 403/404/409/422 and record nothing."""

from __future__ import annotations

from infra.wecom.transfers import RecordingWecomTransfers
from tests.e2e.conftest import Api, assert_error


def hire(api: Api, *staff: str, department: str = "east") -> None:
    for staff_id in staff:
        body = {"id": staff_id, "name": staff_id, "department": department, "region": "sh"}
        assert api.admin.post("/v1/staff", body).status_code == 201


def test_a_handover_round_robins_keeps_refusals_pending_and_a_retry_completes_it(
    api: Api,
) -> None:
    hire(api, "a", "b", "c")
    first = api.customer([("wecom_external_userid", "wm-h1")], owner="a")["id"]
    second = api.customer([("wecom_external_userid", "wm-h2")], owner="a")["id"]
    transfers = api.container.handover.transfers
    assert isinstance(transfers, RecordingWecomTransfers)
    transfers.refuse["wm-h2"] = 40099  # WeCom: the receiver has reached their limit
    manager = api.as_manager("east")

    r = manager.post(
        "/v1/handovers",
        {"kind": "transfer", "from_staff": "a", "department": "east", "key": "move-a",
         "reason": "moving to the west office"},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    started = r.json()
    assert (started["status"], started["handed_over"], started["pending"]) == ("open", 1, 1)

    shown = manager.get("/v1/handovers/move-a", params={"min_position": started["position"]})
    assert shown.status_code == 200, shown.text
    items = {i["ref"]: i for i in shown.json()["item_list"]}
    assert (items[first]["status"], items[first]["to_staff"], items[first]["how"]) == (
        "handed_over",
        "b",
        "round_robin",
    )
    assert (items[second]["status"], items[second]["reason"], items[second]["wecom_errcode"]) == (
        "pending",
        "customer_limit_exceed",
        40099,
    )
    assert api.portrait(first, api.as_staff("b")).status_code == 200  # b's customer now

    r = manager.post("/v1/handovers/move-a/retries", {"to_staff": "c"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["pending"]) == ("completed", 0)
    again = manager.post("/v1/handovers/move-a/retries", {"to_staff": "c"})
    assert again.status_code == 200 and again.json()["position"] is None
    assert api.portrait(second, api.as_staff("c")).json()["owner"] == "c"
    listed = api.admin.get("/v1/handovers", params={"min_position": api.head()}).json()["items"]
    assert [(h["handover_key"], h["status"]) for h in listed] == [("move-a", "completed")]


def test_impossible_handovers_are_refused_and_record_nothing(api: Api) -> None:
    hire(api, "a", "b", "gone")
    hire(api, "w", department="west")
    assert api.admin.post("/v1/staff/gone/departure", {"reason": "left"}).status_code == 202
    manager = api.as_manager("east")
    to = {"kind": "transfer", "from_staff": "a"}
    with api.records_nothing():
        assert_error(manager.post("/v1/handovers", {**to, "to_staff": "a"}), 409,
                     "handover_to_self", "to_staff")  # fmt: skip
        assert_error(manager.post("/v1/handovers", {**to, "to_staff": "gone"}), 409,
                     "receiver_departed", "to_staff")  # fmt: skip
        assert_error(manager.post("/v1/handovers", {**to, "to_staff": "nobody"}), 404,
                     "not_found")  # fmt: skip
        assert_error(
            manager.post("/v1/handovers", {**to, "to_staff": "b", "department": "east"}),
            422, "invalid_input", "to_staff",
        )  # fmt: skip
        assert_error(manager.post("/v1/handovers", {**to, "kind": "retire", "to_staff": "b"}),
                     422, "invalid_input", "kind")  # fmt: skip
        assert_error(manager.post("/v1/handovers", {**to, "to_staff": "w"}), 403, "forbidden")
        assert_error(api.as_staff("b").post("/v1/handovers", {**to, "to_staff": "b"}), 403,
                     "forbidden")  # fmt: skip
        assert_error(manager.post("/v1/handovers/nothing/retries", {}), 404, "not_found")
        assert_error(api.as_manager("west").get("/v1/handovers/nothing"), 404, "not_found")
