"""Work orders through the API: a versioned workflow, a worker roster, a ticket opened, matched
to a template and assigned, moved with forms from the version seen, completed with the
customer's code, rated; SLA breaches recorded once; routing rules opening tickets."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.conftest import Api, MakeApi, assert_error
from tests.unit.test_tickets import COMPLETE_FORM, INSTALLATION


def put(api: Api, path: str, body: Any, token: str | None = None) -> Any:
    return api.client.put(
        path, json=body, headers={"Authorization": f"Bearer {token or api.admin.token}"}
    )


def setup(api: Api) -> None:
    api.admin.staff("fitter.li", department="service")
    api.admin.staff("fitter.wang", department="service")
    api.admin.staff("desk.zhou", department="east")
    r = api.admin.post("/v1/workflows", INSTALLATION)
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1
    for staff_id, regions in (("fitter.li", ["杭州市"]), ("fitter.wang", ["杭州市", "宁波市"])):
        r = put(
            api,
            f"/v1/workers/{staff_id}",
            {"regions": regions, "service_types": ["installation", "repair"]},
        )
        assert r.status_code == 200, r.text
    template = {
        "name": "空调安装",
        "service_type": "installation",
        "products": ["空调", "挂机"],
        "keywords": ["安装", "打孔"],
        "steps": ["预约", "安装", "试机"],
    }
    r = put(api, "/v1/service-templates/ac_installation", {"template": template})
    assert r.status_code == 200, r.text


def open_ticket(api: Api, **more: Any) -> dict[str, Any]:
    body = {
        "workflow": "installation",
        "service_type": "installation",
        "region": "浙江省杭州市西湖区",
        "description": "美的空调挂机，周六上门安装，需要打孔",
        "product": "美的 1.5匹 挂机",
        **more,
    }
    r = api.admin.post("/v1/tickets", body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def ticket(api: Api, tid: str, client: Any = None) -> dict[str, Any]:
    r = (client or api.admin).get(f"/v1/tickets/{tid}", params={"min_position": api.head()})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_an_installation_from_opening_to_rating(make_api: MakeApi) -> None:
    api = make_api()
    setup(api)
    opened = open_ticket(api, urgency="urgent")
    assert opened["template"]["key"] == "ac_installation"
    assert opened["template"]["version"] == 1
    fitter = opened["assignee"]
    assert fitter in ("fitter.li", "fitter.wang")
    installer = api.as_staff(fitter)
    tid = opened["id"]
    seen = ticket(api, tid, installer)
    assert seen["state"] == "assigned" and seen["personal_data"] == "clear"
    assert seen["timeline"][0]["data"]["summary"].startswith("美的空调挂机")

    # Someone else's installer sees nothing; the board shows the installer's own.
    other = api.as_staff("fitter.wang" if fitter == "fitter.li" else "fitter.li")
    assert other.get(f"/v1/tickets/{tid}").status_code == 404
    board = installer.get("/v1/tickets", params={"min_position": api.head()}).json()
    assert [t["ticket_id"] for t in board["items"]] == [tid]

    def move(name: str, form: Any = None, client: Any = installer, **more: Any) -> Any:
        """A transition made from the version the caller sees now, unless told otherwise."""
        more.setdefault("expected_version", ticket(api, tid)["version"])
        return client.post(
            f"/v1/tickets/{tid}/transitions", {"transition": name, "form": form or {}, **more}
        )

    version = seen["version"]
    r = move("schedule", {"visit_on": "2026-11-28"}, expected_version=version)
    assert r.status_code == 200, r.text
    with api.records_nothing():
        no_version = installer.post(
            f"/v1/tickets/{tid}/transitions", {"transition": "arrive", "form": {}}
        )
        assert_error(no_version, 422, "invalid_input", "expected_version")
    with api.records_nothing():  # a second dispatcher dragging the card from the old version
        assert_error(
            move("cancel", {"reason": "duplicate"}, api.admin, expected_version=version),
            409,
            "stale_version",
        )
        assert_error(move("arrive", {}), 422, "invalid_input", "form.arrival_photo")
        assert_error(move("close"), 409, "transition_not_allowed")
        assert_error(move("arrive", {"arrival_photo": "media:arrive-01"}, other), 403, "forbidden")
    assert move("arrive", {"arrival_photo": "media:arrive-01"}).status_code == 200

    with api.records_nothing():
        bad = move("complete", {**COMPLETE_FORM, "distance_km": -1, "signature": None})
        body = assert_error(bad, 422, "invalid_input")
        assert {e["field"] for e in body["errors"]} == {"form.distance_km", "form.signature"}
        assert_error(move("complete", COMPLETE_FORM), 422, "invalid_input", "confirmation_code")
    code = api.admin.post(f"/v1/tickets/{tid}/confirmation-codes").json()["code"]
    r = move("complete", COMPLETE_FORM, confirmation_code=code)
    assert r.status_code == 200, r.text
    assert api.admin.post(f"/v1/tickets/{tid}/rating", {"score": 5}).status_code == 201
    done = ticket(api, tid)
    assert done["state"] == "completed" and done["rating"] == 5 and done["final"]
    completed = next(t for t in done["timeline"] if t["event"] == "TicketCompleted")["data"]
    assert completed["urgency"] == "urgent" and completed["materials_supplied_by"] == "customer"
    assert completed["distance_km"] == "12.5" and completed["assignee"] == fitter
    # An auditor reads the path, not the personal data.
    audited = ticket(api, tid, api.as_role("auditor"))
    assert audited["personal_data"] == "sealed"
    assert audited["timeline"][0]["data"]["summary"] == "[personal data]"


def test_a_revision_affects_new_tickets_only_and_is_on_record(make_api: MakeApi) -> None:
    api = make_api()
    setup(api)
    before = open_ticket(api)["id"]
    revised = copy.deepcopy(INSTALLATION)
    revised["states"][1]["sla_minutes"] = 60
    r = api.admin.post(
        "/v1/workflows/installation/revisions",
        {"definition": revised, "reason": "一小时内联系客户", "expected_version": 1},
    )
    assert r.status_code == 201, r.text
    with api.records_nothing():
        r = api.admin.post(
            "/v1/workflows/installation/revisions",
            {"definition": INSTALLATION, "reason": "x", "expected_version": 1},
        )
        assert_error(r, 409, "stale_version")
        broken = {**revised, "initial": "nowhere"}
        r = api.admin.post(
            "/v1/workflows/installation/revisions",
            {"definition": broken, "reason": "x", "expected_version": 2},
        )
        assert_error(r, 422, "invalid_input", "initial")
    after = open_ticket(api)["id"]
    assert ticket(api, before)["workflow_version"] == 1
    assert ticket(api, after)["workflow_version"] == 2
    history = api.admin.get("/v1/workflows/installation").json()
    assert [v["reason"] for v in history["versions"]] == [None, "一小时内联系客户"]
    assert api.as_staff("fitter.li").post("/v1/workflows", INSTALLATION).status_code == 403


def test_sla_breaches_are_recorded_once_and_reach_the_dashboard(make_api: MakeApi) -> None:
    api = make_api()
    setup(api)
    tid = open_ticket(api)["id"]
    from infra.tickets import breach_overdue_tickets

    api.container.engine.wait_for(api.head(), 5)
    later = datetime.now(UTC) + timedelta(days=3)
    assert breach_overdue_tickets(api.container, later) == [tid]
    api.container.engine.wait_for(api.head(), 5)
    assert breach_overdue_tickets(api.container, later) == []  # a restarted scheduler
    assert api.admin.post("/v1/tickets/sla-runs").json() == {"breached": []}
    seen = ticket(api, tid)
    assert seen["breaches"] == 1
    escalated = api.admin.get("/v1/tickets", params={"breached": "true", "open": "true"})
    assert [t["ticket_id"] for t in escalated.json()["items"]] == [tid]
    assert [s["breached_at"] is not None for s in seen["sla"]] == [False, True]
    dash = api.as_manager("east").get("/v1/dashboards/sla", params={"by": "state"}).json()
    assigned = next(g for g in dash["groups"] if g["state"] == "assigned")
    assert assigned["breached"] == 1 and assigned["on_time"] == 0.0
    workload = api.admin.get("/v1/workers").json()["items"]
    assert sum(w["open_tickets"] for w in workload) == 1


def test_routing_rules_open_a_ticket_once_per_message(make_api: MakeApi) -> None:
    api = make_api()
    setup(api)
    rules = {
        "fallback_queue": "general",
        "rules": [
            {
                "name": "install",
                "queue": "installation",
                "keywords": ["安装", "装机"],
                "action": "open_ticket",
                "workflow": "installation",
                "service_type": "installation",
            },
            {"name": "promo", "queue": "ecommerce", "keywords": ["优惠", "活动", "优惠券"]},
        ],
    }
    assert put(api, "/v1/routing-rules", {"rules": rules}).status_code == 200
    msg = {"message_id": "msg-1", "text": "你好，空调什么时候能上门安装？急", "region": "杭州市"}
    r = api.admin.post("/v1/routing/messages", msg)
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["routed"] and first["decision"]["rule"] == "install"
    assert first["decision"]["urgency"] == "urgent" and first["rules_version"] == 1
    again = api.admin.post("/v1/routing/messages", msg).json()
    assert (again["routed"], again["status"]) == (False, "already_routed")
    promo = api.admin.post(
        "/v1/routing/messages", {"message_id": "msg-2", "text": "双十一有优惠券吗"}
    ).json()
    assert promo["decision"]["queue"] == "ecommerce" and promo["decision"]["action"] == "route"
    decisions = api.admin.get("/v1/routing/decisions", params={"min_position": api.head()})
    items = decisions.json()["items"]
    assert [(d["message_id"], d["queue"], d["ticket_action"]) for d in items] == [
        ("msg-1", "installation", "opened"),
        ("msg-2", "ecommerce", None),
    ]
    board = api.admin.get("/v1/tickets", params={"min_position": api.head()}).json()["items"]
    assert len(board) == 1 and board[0]["urgency"] == "urgent"
    with api.records_nothing():
        bad = {"rules": [{"name": "x", "queue": "q", "action": "explode"}]}
        assert_error(
            put(api, "/v1/routing-rules", {"rules": bad}), 422, "invalid_input", "rules[0].action"
        )


def test_a_ticket_from_an_order_is_linked_to_the_buyers_customer(make_api: MakeApi) -> None:
    from tests.e2e.test_identity_api import customer_with_phone
    from tests.e2e.test_orders_api import SIGNING, fixture, push

    api = make_api(**SIGNING)
    setup(api)
    cid = customer_with_phone(api, "13800138000")
    assert push(api, "taobao", fixture("taobao", "trade_finished")).status_code == 200
    order = api.admin.get("/v1/orders", params={"min_position": api.head()}).json()["items"][0]
    r = api.admin.post(
        "/v1/tickets",
        {
            "workflow": "installation",
            "service_type": "installation",
            "description": "收到货了，约安装",
            "order_id": order["order_id"],
        },
    )
    assert r.status_code == 201, r.text
    seen = ticket(api, r.json()["id"])
    assert seen["customer_id"] == cid and seen["order_id"] == order["order_id"]
    assert seen["region"] == "浙江省杭州市西湖区" and seen["product"].startswith("玉泽")
    portrait = api.portrait(cid).json()
    assert portrait["tickets"]["open"] == 1
    assert portrait["tickets"]["latest"][0]["ticket_id"] == r.json()["id"]

    # ... and on to completion by the installer it was assigned to.
    tid, installer = r.json()["id"], api.as_staff(r.json()["assignee"])
    code = api.admin.post(f"/v1/tickets/{tid}/confirmation-codes").json()["code"]
    for name, form, extra in (
        ("schedule", {"visit_on": "2026-11-28"}, {}),
        ("arrive", {"arrival_photo": "media:arrive-01"}, {}),
        ("complete", COMPLETE_FORM, {"confirmation_code": code}),
    ):
        moved = installer.post(
            f"/v1/tickets/{tid}/transitions",
            {
                "transition": name,
                "form": form,
                "expected_version": ticket(api, tid)["version"],
                **extra,
            },
        )
        assert moved.status_code == 200, moved.text
    assert ticket(api, tid)["state"] == "completed"
    assert api.portrait(cid).json()["tickets"]["open"] == 0
    with api.records_nothing():
        missing = {
            "workflow": "installation",
            "service_type": "installation",
            "description": "x",
            "order_id": "00000000-0000-0000-0000-000000000000",
        }
        assert_error(api.admin.post("/v1/tickets", missing), 422, "invalid_input", "order_id")
        no_region = {"workflow": "installation", "service_type": "installation", "description": "x"}
        assert_error(api.admin.post("/v1/tickets", no_region), 422, "invalid_input", "region")


def test_an_archived_customer_message_is_routed_into_a_ticket(make_api: MakeApi) -> None:
    api = make_api()
    setup(api)
    rules = {
        "rules": [
            {
                "name": "install",
                "queue": "installation",
                "keywords": ["安装"],
                "action": "open_ticket",
                "workflow": "installation",
                "service_type": "installation",
            }
        ]
    }
    assert put(api, "/v1/routing-rules", {"rules": rules}).status_code == 200
    customer = api.customer([("wecom_external_userid", "wmCustomer0001")])["id"]

    def message(msgid: str, sender: str, to: str, text: str, room: str = "") -> dict[str, Any]:
        return {
            "seq": 1,
            "msgid": msgid,
            "action": "send",
            "from": sender,
            "tolist": [to],
            "roomid": room,
            "msgtime": 1_767_000_000_000,
            "msgtype": "text",
            "text": {"content": text},
        }

    records = [
        message("in-1", "wmCustomer0001", "desk.zhou", "空调到了，什么时候上门安装？"),
        message("out-1", "desk.zhou", "wmCustomer0001", "安装师傅明天联系您"),  # staff: no
        message("room-1", "wmCustomer0001", "desk.zhou", "安装", room="wrRoom01"),  # group: no
    ]
    from tests.factories import meta

    api.container.conversations.ingest(records, meta())
    router = api.container.message_router
    assert router is not None
    api.container.engine.wait_for(api.head(), 5)
    while router.run_once() is not None:
        pass
    decisions = api.admin.get("/v1/routing/decisions", params={"min_position": api.head()})
    assert [(d["message_id"], d["ticket_action"]) for d in decisions.json()["items"]] == [
        ("in-1", "opened")
    ]
    board = api.admin.get("/v1/tickets", params={"min_position": api.head()}).json()["items"]
    assert [(t["customer_id"], t["conversation_msgid"]) for t in board] == [(customer, "in-1")]
    # A restarted router that lost its checkpoint routes nothing twice.
    from infra.tickets import MessageRouter

    again = MessageRouter(api.container)
    with api.container.read_db.transaction() as cur:
        again.marks.reset(cur, "routed")
    with api.records_nothing():
        while again.run_once() is not None:
            pass


def test_a_departing_installer_hands_over_their_open_tickets(make_api: MakeApi) -> None:
    api = make_api()
    setup(api)
    opened = open_ticket(api)
    leaving = opened["assignee"]
    staying = "fitter.wang" if leaving == "fitter.li" else "fitter.li"
    r = api.admin.post(f"/v1/staff/{leaving}/departure", {"reason": "离职"})
    assert r.status_code == 202, r.text
    seen = ticket(api, opened["id"])
    assert seen["assignee"] == staying
    handed = [t for t in seen["timeline"] if t["event"] == "TicketAssigned"][-1]
    assert handed["data"]["how"] == "handover" and handed["data"]["previous"] == leaving
    assert handed["data"]["reason"].startswith(f"{leaving} departed; fewest open tickets")
    assert handed["actor"] == "system:handover"
    # Nobody left to take it: it stays on the board, unassigned.
    api.admin.post(f"/v1/staff/{staying}/departure", {"reason": "离职"})
    assert ticket(api, opened["id"])["assignee"] is None
