"""/v1/customers: adding customers, identities, tags, owners; portraits, lists and who sees what."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from infra.tokens import TokenIssuer
from tests.e2e.conftest import MASKED_PHONE, PHONE, Api, MakeApi, assert_error
from tests.factories import ApiClient, meta


def _team(api: Api) -> None:
    """s1 and s2 in east, w1 in west."""
    api.admin.staff("s1", department="east")
    api.admin.staff("s2", department="east")
    api.admin.staff("w1", department="west")


def _list(api: Api, client: ApiClient | None = None, **params: Any) -> Any:
    r = (client or api.admin).get("/v1/customers", {"min_position": api.head(), **params})
    assert r.status_code == 200, r.text
    return r.json()


def _ids(page: Any) -> list[str]:
    return [c["id"] for c in page["items"]]


# --- commands and read-your-writes ------------------------------------------------------------


def test_adding_a_customer_answers_201_and_its_portrait_reads_its_own_write(
    make_api: MakeApi,
) -> None:
    api = make_api(poll_interval=0.25)
    api.admin.staff("s1")

    r = api.admin.post(
        "/v1/customers",
        {
            "identities": [{"kind": "openid", "value": "o-1"}, {"kind": "phone", "value": PHONE}],
            "tags": ["vip", "vip", "north"],
            "owner": "s1",
        },
    )

    assert r.status_code == 201, r.text
    added = r.json()
    assert added["version"] == 1
    assert added["position"] == api.head()
    portrait = api.admin.get(
        f"/v1/customers/{added['id']}/portrait", params={"min_position": added["position"]}
    )
    assert portrait.status_code == 200, portrait.text
    body = portrait.json()
    assert body["id"] == added["id"]
    assert body["owner"] == "s1"
    assert body["source_channel_code"] is None
    assert body["version"] == 1
    assert body["tags"] == ["north", "vip"]
    assert {(i["kind"], i["value"]) for i in body["identities"]} == {
        ("openid", "o-1"),
        ("phone", PHONE),
    }


def test_the_customer_list_honours_the_x_min_position_header(make_api: MakeApi) -> None:
    api = make_api(poll_interval=0.25)
    added = api.customer()

    r = api.admin.get("/v1/customers", headers={"X-Min-Position": str(added["position"])})

    assert r.status_code == 200
    assert _ids(r.json()) == [added["id"]]


def test_adding_an_identity_answers_202_and_shows_in_the_portrait(api: Api) -> None:
    added = api.customer([("openid", "o-1")])

    r = api.admin.post(
        f"/v1/customers/{added['id']}/identities", {"kind": "phone", "value": "138-1234-5678"}
    )

    assert r.status_code == 202, r.text
    assert r.json()["version"] == 2
    assert r.json()["position"] == api.head()
    identities = api.portrait(added["id"]).json()["identities"]
    assert {"kind": "phone", "value": PHONE} in identities


def test_tags_are_added_and_removed_with_202_and_the_version_moves_on(api: Api) -> None:
    added = api.customer(tags=["a", "b"])

    r = api.admin.post(f"/v1/customers/{added['id']}/tags", {"add": ["c"], "remove": ["a"]})

    assert r.status_code == 202, r.text
    assert r.json()["version"] == 3  # CustomerTagged, CustomerUntagged
    portrait = api.portrait(added["id"]).json()
    assert portrait["tags"] == ["b", "c"]
    assert portrait["version"] == 3


def test_reassigning_the_owner_answers_202_and_moves_the_customer(api: Api) -> None:
    _team(api)
    added = api.customer(owner="s1")

    r = api.admin.post(f"/v1/customers/{added['id']}/owner", {"staff_id": "s2"})

    assert r.status_code == 202, r.text
    assert api.portrait(added["id"]).json()["owner"] == "s2"
    assert _ids(_list(api, owner="s2")) == [added["id"]]
    assert _list(api, owner="s1")["items"] == []


def test_reassigning_to_departed_or_unknown_staff_is_a_422_and_records_nothing(api: Api) -> None:
    _team(api)
    api.admin.post("/v1/staff/s2/departure", {})
    added = api.customer(owner="s1")

    for staff_id in ("s2", "ghost"):
        with api.records_nothing():
            r = api.admin.post(f"/v1/customers/{added['id']}/owner", {"staff_id": staff_id})
        assert_error(r, 422, "invalid_input", field="staff_id")


# --- optimistic concurrency --------------------------------------------------------------------


def test_tags_with_a_stale_version_are_a_409_stale_version_and_record_nothing(api: Api) -> None:
    added = api.customer()
    path = f"/v1/customers/{added['id']}/tags"
    assert api.admin.post(path, {"add": ["first"]}).status_code == 202  # now version 2

    with api.records_nothing():
        by_header = api.admin.post(path, {"add": ["late"]}, headers={"If-Match": "1"})
        by_body = api.admin.post(path, {"add": ["late"], "expected_version": 1})
        weak_etag = api.admin.post(path, {"add": ["late"]}, headers={"If-Match": 'W/"1"'})

    for r in (by_header, by_body, weak_etag):
        assert_error(r, 409, "stale_version")
    assert "late" not in api.portrait(added["id"]).json()["tags"]


def test_tags_with_the_current_version_are_accepted(api: Api) -> None:
    added = api.customer()
    path = f"/v1/customers/{added['id']}/tags"

    by_header = api.admin.post(path, {"add": ["one"]}, headers={"If-Match": '"1"'})
    by_body = api.admin.post(path, {"add": ["two"], "expected_version": 2})

    assert by_header.status_code == 202, by_header.text
    assert by_body.status_code == 202, by_body.text
    assert by_body.json()["version"] == 3
    assert api.portrait(added["id"]).json()["tags"] == ["one", "two"]


def test_an_owner_change_with_a_stale_version_is_a_409_and_records_nothing(api: Api) -> None:
    _team(api)
    added = api.customer(owner="s1")
    api.admin.post(f"/v1/customers/{added['id']}/tags", {"add": ["x"]})

    with api.records_nothing():
        r = api.admin.post(
            f"/v1/customers/{added['id']}/owner", {"staff_id": "s2"}, headers={"If-Match": "1"}
        )

    assert_error(r, 409, "stale_version")
    assert api.portrait(added["id"]).json()["owner"] == "s1"


def test_an_if_match_that_is_not_a_version_is_a_422_naming_the_header(api: Api) -> None:
    added = api.customer()

    with api.records_nothing():
        r = api.admin.post(
            f"/v1/customers/{added['id']}/tags", {"add": ["x"]}, headers={"If-Match": "abc"}
        )

    assert_error(r, 422, "invalid_input", field="If-Match")


# --- bad input ---------------------------------------------------------------------------------

BAD_CUSTOMERS: list[tuple[dict[str, Any], str]] = [
    ({"identities": [{"kind": "email", "value": "a@b.c"}]}, "identities.0.kind"),
    ({"identities": [{"kind": "phone", "value": "12ab34"}]}, "identities.phone"),
    ({"identities": [{"kind": "phone", "value": "1" * 21}]}, "identities.phone"),
    ({"identities": [{"kind": "phone", "value": "123"}]}, "identities.phone"),
    ({"identities": []}, "identities"),
    ({}, "identities"),
    ({"identities": [{"kind": "openid", "value": ""}]}, "identities.0.value"),
    ({"identities": [{"kind": "openid", "value": "has space"}]}, "identities.openid"),
    ({"identities": [{"kind": "openid", "value": "o" * 129}]}, "identities.0.value"),
    ({"identities": [{"kind": "openid"}]}, "identities.0.value"),
    ({"identities": [{"kind": "openid", "value": "o-1"}], "owner": "ghost"}, "owner"),
    ({"identities": [{"kind": "openid", "value": "o-1"}], "tags": [""]}, "tags"),
    ({"identities": [{"kind": "openid", "value": "o-1"}], "tags": ["t" * 41]}, "tags"),
    ({"identities": [{"kind": "openid", "value": "o-1"}], "vip": True}, "vip"),
]


def test_bad_customer_input_is_a_422_naming_the_field_and_records_nothing(api: Api) -> None:
    for body, field in BAD_CUSTOMERS:
        with api.records_nothing():
            r = api.admin.post("/v1/customers", body)
        error = assert_error(r, 422, "invalid_input", field=field)
        for identity in body.get("identities", []):
            value = identity.get("value")
            if identity.get("kind") == "phone":
                assert value not in error["detail"], "an error must not echo personal data"
    assert _list(api)["items"] == []


def test_bad_identity_and_tag_changes_are_a_422_and_record_nothing(api: Api) -> None:
    added = api.customer()
    base = f"/v1/customers/{added['id']}"
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/identities", {"kind": "email", "value": "a@b.c"}, "kind"),
        ("/identities", {"kind": "phone", "value": "not a phone"}, "identities.phone"),
        ("/identities", {"kind": "phone"}, "value"),
        ("/tags", {}, "add"),
        ("/tags", {"add": [""]}, "add"),
        ("/tags", {"remove": ["r" * 41]}, "remove"),
        ("/tags", {"add": ["x"], "expected_version": 0}, "expected_version"),
        ("/owner", {}, "staff_id"),
    ]

    for suffix, body, field in cases:
        with api.records_nothing():
            r = api.admin.post(base + suffix, body)
        assert_error(r, 422, "invalid_input", field=field)


def test_a_customer_id_that_is_not_a_uuid_is_a_422_naming_it(api: Api) -> None:
    with api.records_nothing():
        for r in (
            api.admin.get("/v1/customers/42/portrait"),
            api.admin.post("/v1/customers/42/tags", {"add": ["x"]}),
            api.admin.post("/v1/customers/42/identities", {"kind": "openid", "value": "o"}),
            api.admin.post("/v1/customers/42/owner", {"staff_id": "s1"}),
        ):
            assert_error(r, 422, "invalid_input", field="customer_id")


def test_an_unknown_customer_is_a_404_and_records_nothing(api: Api) -> None:
    api.admin.staff("s1")
    unknown = f"/v1/customers/{uuid4()}"

    with api.records_nothing():
        for r in (
            api.admin.get(unknown + "/portrait"),
            api.admin.post(unknown + "/tags", {"add": ["x"]}),
            api.admin.post(unknown + "/identities", {"kind": "openid", "value": "o"}),
            api.admin.post(unknown + "/owner", {"staff_id": "s1"}),
        ):
            assert_error(r, 404, "not_found")


def test_a_phone_already_on_another_customer_is_a_409_identity_taken(api: Api) -> None:
    first = api.customer([("phone", PHONE)])
    second = api.customer([("openid", "o-2")])

    with api.records_nothing():
        again = api.admin.post(
            "/v1/customers", {"identities": [{"kind": "phone", "value": "138 1234 5678"}]}
        )
        added_later = api.admin.post(
            f"/v1/customers/{second['id']}/identities", {"kind": "phone", "value": PHONE}
        )

    for r in (again, added_later):
        error = assert_error(r, 409, "identity_taken", field="identities.phone")
        assert PHONE not in r.text, "the conflict must not echo the phone"
        assert first["id"] not in error["detail"], "nor whose it is"
    assert len(_list(api)["items"]) == 2


def test_an_openid_already_on_another_customer_is_a_409_identity_taken(api: Api) -> None:
    api.customer([("openid", "o-1")])

    with api.records_nothing():
        r = api.admin.post("/v1/customers", {"identities": [{"kind": "openid", "value": "o-1"}]})

    assert_error(r, 409, "identity_taken", field="identities.openid")


# --- the portrait: masking and timeline -----------------------------------------------------


def test_a_phone_is_in_clear_for_admins_and_the_owning_staff_and_masked_for_others(
    api: Api,
) -> None:
    _team(api)
    added = api.customer([("phone", PHONE), ("openid", "o-1")], owner="s1")

    seen = {}
    for who, client in {
        "admin": api.admin,
        "owner": api.as_staff("s1"),
        "manager": api.as_manager("east"),
        "auditor": api.as_role("auditor"),
    }.items():
        r = api.portrait(added["id"], client)
        assert r.status_code == 200, (who, r.text)
        body = r.json()
        phones = [i["value"] for i in body["identities"] if i["kind"] == "phone"]
        seen[who] = (phones, body["personal_data"])
        assert {"kind": "openid", "value": "o-1"} in body["identities"]

    assert seen == {
        "admin": ([PHONE], "clear"),
        "owner": ([PHONE], "clear"),
        "manager": ([MASKED_PHONE], "masked"),
        "auditor": ([MASKED_PHONE], "masked"),
    }


def test_the_phone_never_appears_in_clear_anywhere_in_a_masked_viewers_portrait(
    api: Api,
) -> None:
    _team(api)
    added = api.customer([("openid", "o-1")], owner="s1")
    api.admin.post(f"/v1/customers/{added['id']}/identities", {"kind": "phone", "value": PHONE})
    other = api.customer([("phone", "13900001111")], owner="s2")

    for client in (api.as_manager("east"), api.as_role("auditor")):
        for customer_id, phone in ((added["id"], PHONE), (other["id"], "13900001111")):
            r = api.portrait(customer_id, client)
            assert r.status_code == 200, r.text
            assert phone not in r.text
            assert "pd1." not in r.text, "sealed values are not shown either"
            assert phone[:3] + "****" + phone[-4:] in r.text
            events = [t["event"] for t in r.json()["timeline"]]
            assert "CustomerAdded" in events


def test_the_event_log_and_the_read_models_never_hold_a_phone_in_clear(api: Api) -> None:
    api.admin.staff("s1")
    added = api.customer([("phone", PHONE)], owner="s1")
    api.admin.post(
        f"/v1/customers/{added['id']}/identities", {"kind": "phone", "value": "13900001111"}
    )
    api.container.engine.wait_for(api.head(), 5)

    log = b"".join(record.body() for record in api.container.read_log(0, 1000))
    stored = api.container.read_db.query("SELECT kind, value FROM portrait_identities")

    assert PHONE.encode() not in log and b"13900001111" not in log
    assert b"pd1." in log
    assert {kind for kind, _ in stored} == {"phone"}
    assert all(value.startswith("pd1.") for _, value in stored)


def test_the_timeline_lists_every_event_about_the_customer_with_its_envelope(api: Api) -> None:
    _team(api)
    code = api.admin.code(["s1"], tags=["fair"])
    scan = api.as_staff("s1").scan(code["id"], openid="o-1").json()
    cid = scan["customer_id"]
    owner = api.as_staff("s1")
    owner.post(f"/v1/customers/{cid}/identities", {"kind": "phone", "value": PHONE})
    owner.post(f"/v1/customers/{cid}/tags", {"add": ["vip"]})
    owner.post(f"/v1/customers/{cid}/tags", {"remove": ["fair"]})
    api.admin.post(f"/v1/customers/{cid}/owner", {"staff_id": "s2"})

    timeline = api.portrait(cid).json()["timeline"]

    assert [t["event"] for t in timeline] == [
        "CustomerAdded",
        "ChannelCodeScanned",
        "CustomerIdentityAdded",
        "CustomerTagged",
        "CustomerUntagged",
        "CustomerOwnerAssigned",
    ]
    positions = [t["position"] for t in timeline]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert [t["actor"] for t in timeline] == ["staff:s1"] * 5 + ["user:admin"]
    for entry in timeline:
        assert entry["source"] == "api"
        assert entry["correlation_id"]
        occurred = datetime.fromisoformat(entry["occurred_at"])
        recorded = datetime.fromisoformat(entry["recorded_at"])
        assert occurred.tzinfo is not None and recorded.tzinfo is not None
        assert abs(recorded - occurred) < timedelta(seconds=30)
    scanned = timeline[1]
    assert scanned["data"]["customer_id"] == cid
    assert scanned["data"]["assigned_staff"] == "s1"
    assert scanned["correlation_id"] == timeline[0]["correlation_id"], "one request, one id"
    assert timeline[-1]["data"]["staff_id"] == "s2"
    assert timeline[-1]["data"]["previous_owner"] == "s1"


def test_the_timeline_tells_when_it_happened_apart_from_when_it_was_recorded(api: Api) -> None:
    happened = datetime.now(UTC) - timedelta(days=1, hours=3)
    # As a platform callback records it: business time from the source system.
    added = api.container.customers.add_customer(
        identities=[("wecom_external_userid", "wm-1")],
        tags=[],
        owner=None,
        meta=meta(actor="integration:wecom", source="wecom", at=happened),
    )

    (entry,) = api.portrait(added.id).json()["timeline"]

    assert datetime.fromisoformat(entry["occurred_at"]) == happened
    recorded = datetime.fromisoformat(entry["recorded_at"])
    assert datetime.now(UTC) - recorded < timedelta(minutes=1)
    assert (entry["actor"], entry["source"]) == ("integration:wecom", "wecom")


def test_x_correlation_id_is_echoed_and_stored_as_the_events_correlation_id(api: Api) -> None:
    api.admin.staff("s1")
    code = api.admin.code(["s1"])

    scan = api.admin.post(
        f"/v1/channel-codes/{code['id']}/scans",
        {"visitor": {"openid": "o-1"}},
        headers={"X-Correlation-Id": "req-scan-1"},
    )
    cid = scan.json()["customer_id"]
    tag = api.admin.post(
        f"/v1/customers/{cid}/tags", {"add": ["x"]}, headers={"X-Correlation-Id": "req-tag-2"}
    )
    untag = api.admin.post(f"/v1/customers/{cid}/tags", {"remove": ["x"]})

    assert scan.headers["x-correlation-id"] == "req-scan-1"
    assert tag.headers["x-correlation-id"] == "req-tag-2"
    generated = untag.headers["x-correlation-id"]
    assert generated and generated not in ("req-scan-1", "req-tag-2")
    timeline = api.portrait(cid).json()["timeline"]
    assert [(t["event"], t["correlation_id"]) for t in timeline] == [
        ("CustomerAdded", "req-scan-1"),
        ("ChannelCodeScanned", "req-scan-1"),
        ("CustomerTagged", "req-tag-2"),
        ("CustomerUntagged", generated),
    ]


def test_a_refused_command_still_echoes_its_correlation_id(api: Api) -> None:
    added = api.customer()

    r = api.admin.post(
        f"/v1/customers/{added['id']}/tags",
        {"add": ["x"]},
        headers={"If-Match": "7", "X-Correlation-Id": "req-refused"},
    )

    assert_error(r, 409, "stale_version")
    assert r.headers["x-correlation-id"] == "req-refused"


def test_an_overlong_correlation_id_is_a_422_and_records_nothing(api: Api) -> None:
    with api.records_nothing():
        r = api.admin.post(
            "/v1/customers",
            {"identities": [{"kind": "openid", "value": "o-1"}]},
            headers={"X-Correlation-Id": "c" * 101},
        )

    assert_error(r, 422, "invalid_input", field="x-correlation-id")


# --- authentication and scopes -----------------------------------------------------------------


def test_requests_without_a_valid_token_are_401_and_record_nothing(api: Api) -> None:
    added = api.customer()
    foreign = TokenIssuer(b"\x01" * 32).create("admin")
    expired = api.container.tokens.create("admin", now=datetime.now(UTC) - timedelta(days=365))
    requests = [
        ("GET", "/v1/customers", None),
        ("GET", f"/v1/customers/{added['id']}/portrait", None),
        ("POST", "/v1/customers", {"identities": [{"kind": "openid", "value": "o-9"}]}),
        ("POST", f"/v1/customers/{added['id']}/tags", {"add": ["x"]}),
    ]
    credentials: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {api.admin.token}"},
        {"Authorization": f"Bearer {foreign}"},
        {"Authorization": f"Bearer {expired}"},
    ]

    with api.records_nothing():
        for method, path, body in requests:
            for headers in credentials:
                r = api.client.request(method, path, json=body, headers=headers)
                assert_error(r, 401, "unauthorized")
                assert r.headers["www-authenticate"] == "Bearer"


def test_a_regulator_is_refused_every_customer_query_and_command(api: Api) -> None:
    added = api.customer()
    regulator = api.as_role("regulator")

    with api.records_nothing():
        for r in (
            regulator.get("/v1/customers"),
            regulator.get(f"/v1/customers/{added['id']}/portrait"),
            regulator.post("/v1/customers", {"identities": [{"kind": "openid", "value": "o"}]}),
            regulator.post(f"/v1/customers/{added['id']}/tags", {"add": ["x"]}),
        ):
            assert_error(r, 403, "forbidden")


def test_an_auditor_reads_every_customer_but_changes_nothing(api: Api) -> None:
    _team(api)
    east = api.customer([("openid", "o-1")], owner="s1")
    west = api.customer([("openid", "o-2")], owner="w1")
    auditor = api.as_role("auditor")

    assert _ids(_list(api, auditor)) == [east["id"], west["id"]]
    assert api.portrait(west["id"], auditor).status_code == 200
    with api.records_nothing():
        for r in (
            auditor.post("/v1/customers", {"identities": [{"kind": "openid", "value": "o-3"}]}),
            auditor.post(f"/v1/customers/{east['id']}/tags", {"add": ["x"]}),
            auditor.post(
                f"/v1/customers/{east['id']}/identities", {"kind": "openid", "value": "o-4"}
            ),
            auditor.post(f"/v1/customers/{east['id']}/owner", {"staff_id": "s2"}),
        ):
            assert_error(r, 403, "forbidden")


def test_staff_see_only_their_own_customers(api: Api) -> None:
    _team(api)
    mine = api.customer([("openid", "o-1")], owner="s1")
    theirs = api.customer([("openid", "o-2")], owner="s2")
    api.customer([("openid", "o-3")])  # nobody's yet
    s1 = api.as_staff("s1")

    assert _ids(_list(api, s1)) == [mine["id"]]
    assert _ids(_list(api, s1, owner="s1")) == [mine["id"]]
    assert_error(s1.get("/v1/customers", {"owner": "s2"}), 403, "forbidden")
    assert api.portrait(mine["id"], s1).status_code == 200
    assert_error(api.portrait(theirs["id"], s1), 403, "forbidden")


def test_staff_cannot_change_another_staff_members_customer(api: Api) -> None:
    _team(api)
    theirs = api.customer([("openid", "o-2")], owner="s2")
    s1 = api.as_staff("s1")

    with api.records_nothing():
        for r in (
            s1.post(f"/v1/customers/{theirs['id']}/tags", {"add": ["mine now"]}),
            s1.post(f"/v1/customers/{theirs['id']}/identities", {"kind": "phone", "value": PHONE}),
            s1.post(f"/v1/customers/{theirs['id']}/owner", {"staff_id": "s1"}),
        ):
            assert_error(r, 403, "forbidden")
    assert api.portrait(theirs["id"]).json()["owner"] == "s2"


def test_staff_add_customers_for_themselves_only(api: Api) -> None:
    _team(api)
    s1 = api.as_staff("s1")

    own = api.customer([("openid", "o-1")], client=s1)
    implicit = api.customer([("openid", "o-2")], owner="s1", client=s1)
    with api.records_nothing():
        r = s1.post(
            "/v1/customers", {"identities": [{"kind": "openid", "value": "o-3"}], "owner": "s2"}
        )

    assert_error(r, 403, "forbidden")
    assert api.portrait(own["id"]).json()["owner"] == "s1"
    assert api.portrait(implicit["id"]).json()["owner"] == "s1"
    assert api.portrait(own["id"]).json()["timeline"][0]["actor"] == "staff:s1"


def test_staff_cannot_reassign_even_their_own_customers(api: Api) -> None:
    _team(api)
    mine = api.customer([("openid", "o-1")], owner="s1")

    with api.records_nothing():
        r = api.as_staff("s1").post(f"/v1/customers/{mine['id']}/owner", {"staff_id": "s2"})

    assert_error(r, 403, "forbidden")


def test_a_manager_sees_only_their_departments_customers(api: Api) -> None:
    _team(api)
    east1 = api.customer([("openid", "o-1")], owner="s1")
    east2 = api.customer([("openid", "o-2")], owner="s2")
    west = api.customer([("openid", "o-3")], owner="w1")
    east_manager = api.as_manager("east")

    assert _ids(_list(api, east_manager)) == [east1["id"], east2["id"]]
    assert _ids(_list(api, api.as_manager("west"))) == [west["id"]]
    assert _ids(_list(api, east_manager, owner="w1")) == []
    assert api.portrait(east2["id"], east_manager).status_code == 200
    assert_error(api.portrait(west["id"], east_manager), 403, "forbidden")
    with api.records_nothing():
        r = east_manager.post(f"/v1/customers/{west['id']}/tags", {"add": ["x"]})
    assert_error(r, 403, "forbidden")


def test_a_manager_assigns_customers_only_to_staff_of_their_department(api: Api) -> None:
    _team(api)
    east = api.customer([("openid", "o-1")], owner="s1")
    manager = api.as_manager("east")

    with api.records_nothing():
        add = manager.post(
            "/v1/customers", {"identities": [{"kind": "openid", "value": "o-2"}], "owner": "w1"}
        )
        move = manager.post(f"/v1/customers/{east['id']}/owner", {"staff_id": "w1"})
    assert_error(add, 403, "forbidden")
    assert_error(move, 403, "forbidden")

    r = manager.post(f"/v1/customers/{east['id']}/owner", {"staff_id": "s2"})
    assert r.status_code == 202, r.text
    assert api.portrait(east["id"]).json()["owner"] == "s2"


# --- lists: filters and paging -----------------------------------------------------------------


def test_customers_are_filtered_by_tag_owner_and_channel_code(api: Api) -> None:
    _team(api)
    code = api.admin.code(["s1", "s2"], tags=["fair"])
    scanned1 = api.admin.scan(code["id"], openid="o-1").json()["customer_id"]  # s1
    scanned2 = api.admin.scan(code["id"], openid="o-2").json()["customer_id"]  # s2
    direct = api.customer([("openid", "o-3")], tags=["vip"], owner="s1")["id"]
    api.admin.post(f"/v1/customers/{scanned2}/tags", {"add": ["vip"]})

    assert _ids(_list(api, tag="vip")) == [scanned2, direct]
    assert _ids(_list(api, tag="fair")) == [scanned1, scanned2]
    assert _ids(_list(api, owner="s1")) == [scanned1, direct]
    assert _ids(_list(api, channel_code=code["id"])) == [scanned1, scanned2]
    assert _ids(_list(api, channel_code=code["id"], tag="vip", owner="s2")) == [scanned2]
    assert _list(api, tag="nobody-has-this")["items"] == []
    assert _list(api, channel_code=str(uuid4()))["items"] == []
    item = _list(api, tag="vip")["items"][0]
    assert item["tags"] == ["fair", "vip"]
    assert item["owner"] == "s2"
    assert item["source_channel_code"] == code["id"]


def test_customers_are_paged_with_after_and_next_after(api: Api) -> None:
    added = [api.customer([("openid", f"o-{n}")])["id"] for n in range(7)]

    pages, after = [], 0
    while True:
        page = _list(api, limit=3, after=after)
        pages.append(_ids(page))
        if page["next_after"] is None:
            break
        after = page["next_after"]

    assert pages == [added[0:3], added[3:6], added[6:7]]
    assert _list(api, limit=7)["next_after"] is None
    assert _list(api, limit=2, after=_list(api, limit=7)["items"][-1]["cursor"])["items"] == []


def test_bad_list_parameters_are_a_422_naming_them(api: Api) -> None:
    for params, field in (
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"after": -1}, "after"),
        ({"channel_code": "not-a-uuid"}, "channel_code"),
        ({"min_position": "soon"}, "min_position"),
    ):
        assert_error(api.admin.get("/v1/customers", params), 422, "invalid_input", field=field)


# --- concurrency -------------------------------------------------------------------------------


def test_concurrent_tag_changes_from_one_version_let_exactly_one_win(api: Api) -> None:
    added = api.customer()
    path = f"/v1/customers/{added['id']}/tags"
    contenders = 8
    barrier = threading.Barrier(contenders)

    def attempt(n: int) -> Any:
        barrier.wait()
        return api.admin.post(path, {"add": [f"t{n}"]}, headers={"If-Match": "1"})

    head = api.head()
    with ThreadPoolExecutor(contenders) as pool:
        responses = list(pool.map(attempt, range(contenders)))

    winners = [n for n, r in enumerate(responses) if r.status_code == 202]
    assert len(winners) == 1, [r.text for r in responses]
    for r in responses:
        if r.status_code != 202:
            assert r.json()["error"] in ("stale_version", "concurrent_update"), r.text
            assert_error(r, 409, r.json()["error"])
    assert api.head() == head + 1, "losers record nothing"
    assert api.portrait(added["id"]).json()["tags"] == [f"t{winners[0]}"]


def test_concurrent_customers_with_one_phone_are_one_customer_and_the_rest_409(api: Api) -> None:
    contenders = 6
    barrier = threading.Barrier(contenders)

    def attempt(n: int) -> Any:
        barrier.wait()
        return api.admin.post(
            "/v1/customers",
            {
                "identities": [
                    {"kind": "openid", "value": f"o-{n}"},
                    {"kind": "phone", "value": PHONE},
                ]
            },
        )

    with ThreadPoolExecutor(contenders) as pool:
        responses = list(pool.map(attempt, range(contenders)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (contenders - 1), [r.text for r in responses]
    assert len(_list(api)["items"]) == 1


def test_events_name_the_token_holder_who_acted(api: Api) -> None:
    ops = api.admin.as_token(api.container.tokens.create("admin", subject="ops.lead"))
    added = ops.post("/v1/customers", {"identities": [{"kind": "openid", "value": "o-who"}]})
    assert added.status_code == 201, added.text
    portrait = ops.get(
        f"/v1/customers/{added.json()['id']}/portrait",
        params={"min_position": added.json()["position"]},
    )
    assert [t["actor"] for t in portrait.json()["timeline"]] == ["user:ops.lead"]
