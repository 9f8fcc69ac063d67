"""/v1/channel-codes: creating and disabling codes, scans and their refusals, code stats."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from tests.e2e.conftest import Api, MakeApi, assert_error


def _stats(api: Api, code_id: str, position: int | None = None) -> Any:
    r = api.admin.get(
        f"/v1/channel-codes/{code_id}/stats",
        params={"min_position": position if position is not None else api.head()},
    )
    assert r.status_code == 200, r.text
    return r.json()


def _future(seconds: float = 3600) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def test_creating_a_code_answers_201_and_its_stats_read_their_own_write(make_api: MakeApi) -> None:
    api = make_api(poll_interval=0.25)
    api.admin.staff("s1")
    api.admin.staff("s2")
    expires = _future()

    r = api.admin.post(
        "/v1/channel-codes",
        {
            "name": "spring fair",
            "staff_pool": ["s1", "s2", "s1"],
            "tags": ["fair", "spring"],
            "welcome_message": "欢迎光临",
            "expires_at": expires,
            "max_scans": 100,
        },
    )

    assert r.status_code == 201, r.text
    created = r.json()
    assert created["version"] == 1
    assert created["position"] == api.head()
    stats = _stats(api, created["id"], created["position"])
    assert stats["id"] == created["id"]
    assert stats["name"] == "spring fair"
    assert stats["staff_pool"] == ["s1", "s2"]
    assert stats["tags"] == ["fair", "spring"]
    assert datetime.fromisoformat(stats["expires_at"]) == datetime.fromisoformat(expires)
    assert stats["max_scans"] == 100
    assert stats["status"] == "active"
    assert (stats["scans"], stats["adds"], stats["refusals"]) == (0, 0, 0)
    assert stats["refusals_by_reason"] == {} and stats["daily"] == []


def test_a_scan_answers_the_customer_the_assigned_staff_and_the_welcome_message(api: Api) -> None:
    api.admin.staff("s1")
    code = api.admin.code(["s1"], welcome_message="你好，我是您的顾问", tags=["vip"])

    r = api.admin.scan(code["id"], openid="o-visitor-1", unionid="u-visitor-1")

    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"] == code["id"]
    assert body["position"] == api.head()
    assert body["new_customer"] is True
    assert body["assigned_staff"] == "s1"
    assert body["welcome_message"] == "你好，我是您的顾问"
    portrait = api.portrait(body["customer_id"]).json()
    assert portrait["owner"] == "s1"
    assert portrait["source_channel_code"] == code["id"]
    assert portrait["tags"] == ["vip"]
    assert {(i["kind"], i["value"]) for i in portrait["identities"]} == {
        ("openid", "o-visitor-1"),
        ("unionid", "u-visitor-1"),
    }


def test_a_scans_device_and_ip_are_kept_only_as_keyed_hashes(api: Api) -> None:
    api.admin.staff("s1")
    code = api.admin.code(["s1"])
    device, ip = "iPhone15,2 build-XYZ-42", "203.0.113.77"

    r = api.admin.post(
        f"/v1/channel-codes/{code['id']}/scans",
        {"visitor": {"openid": "o-1"}, "device": device, "ip": ip},
    )

    assert r.status_code == 201, r.text
    log = b"".join(record.body() for record in api.container.read_log(0, 1000))
    portrait = api.portrait(r.json()["customer_id"])
    for secret in (device, ip):
        assert secret.encode() not in log
        assert secret not in portrait.text
    scanned = next(t for t in portrait.json()["timeline"] if t["event"] == "ChannelCodeScanned")
    assert scanned["data"]["device_hash"] and scanned["data"]["ip_hash"]


def test_scans_of_new_visitors_rotate_round_robin_across_the_pool(api: Api) -> None:
    for staff_id in ("a", "b", "c"):
        api.admin.staff(staff_id)
    code = api.admin.code(["a", "b", "c"])

    assigned = [
        api.admin.scan(code["id"], openid=f"o-{n}").json()["assigned_staff"] for n in range(7)
    ]

    assert assigned == ["a", "b", "c", "a", "b", "c", "a"]
    stats = _stats(api, code["id"])
    assert (stats["scans"], stats["adds"]) == (7, 7)


def test_a_returning_visitor_goes_back_to_their_owner_without_taking_a_turn(api: Api) -> None:
    api.admin.staff("a")
    api.admin.staff("b")
    code = api.admin.code(["a", "b"])
    first = api.admin.scan(code["id"], openid="o-returning").json()

    again = api.admin.scan(code["id"], openid="o-returning").json()
    other = api.admin.scan(code["id"], openid="o-other").json()

    assert again["customer_id"] == first["customer_id"]
    assert again["new_customer"] is False
    assert again["assigned_staff"] == "a"
    assert other["assigned_staff"] == "b"
    stats = _stats(api, code["id"])
    assert (stats["scans"], stats["adds"]) == (3, 2)


def test_the_rotation_skips_staff_who_have_departed(api: Api) -> None:
    for staff_id in ("a", "b", "c"):
        api.admin.staff(staff_id)
    code = api.admin.code(["a", "b", "c"])
    assert api.admin.post("/v1/staff/b/departure", {}).status_code == 202

    assigned = [
        api.admin.scan(code["id"], openid=f"o-{n}").json()["assigned_staff"] for n in range(4)
    ]

    assert assigned == ["a", "c", "a", "c"]


def test_a_scan_of_an_expired_code_is_a_410_code_expired_and_the_refusal_is_recorded(
    api: Api,
) -> None:
    api.admin.staff("s1")
    code = api.admin.code(["s1"], expires_at=_future(0.4))
    time.sleep(0.5)
    head = api.head()

    r = api.admin.scan(code["id"], openid="o-late")

    body = assert_error(r, 410, "code_expired")
    assert body["position"] == head + 1 == api.head()
    stats = _stats(api, code["id"], body["position"])
    assert stats["status"] == "expired"
    assert (stats["scans"], stats["refusals"]) == (0, 1)
    assert stats["refusals_by_reason"] == {"code_expired": 1}


def test_a_scan_of_a_disabled_code_is_a_410_code_disabled_and_the_refusal_is_recorded(
    api: Api,
) -> None:
    api.admin.staff("s1")
    code = api.admin.code(["s1"])
    disabled = api.admin.post(f"/v1/channel-codes/{code['id']}/disable", {"reason": "leaked"})
    assert disabled.status_code == 202, disabled.text
    assert disabled.json()["version"] == 2
    assert disabled.json()["position"] == api.head()

    r = api.admin.scan(code["id"], openid="o-1")

    body = assert_error(r, 410, "code_disabled")
    assert body["position"] == api.head()
    stats = _stats(api, code["id"], body["position"])
    assert stats["status"] == "disabled"
    assert stats["disabled_at"] is not None
    assert stats["refusals_by_reason"] == {"code_disabled": 1}


def test_a_scan_beyond_max_scans_is_a_409_code_exhausted_and_the_refusal_is_recorded(
    api: Api,
) -> None:
    api.admin.staff("s1")
    code = api.admin.code(["s1"], max_scans=2)
    assert api.admin.scan(code["id"], openid="o-1").status_code == 201
    assert api.admin.scan(code["id"], openid="o-2").status_code == 201

    r = api.admin.scan(code["id"], openid="o-3")
    again = api.admin.scan(code["id"], openid="o-1")

    assert_error(r, 409, "code_exhausted")
    body = assert_error(again, 409, "code_exhausted")
    assert body["position"] == api.head()
    stats = _stats(api, code["id"], body["position"])
    assert stats["status"] == "exhausted"
    assert (stats["scans"], stats["adds"], stats["refusals"]) == (2, 2, 2)
    assert stats["refusals_by_reason"] == {"code_exhausted": 2}
    listed = api.admin.get("/v1/customers", params={"channel_code": code["id"]}).json()
    assert len(listed["items"]) == 2, "a refused scan adds no customer"


def test_a_scan_when_the_whole_pool_has_departed_is_a_recorded_409(api: Api) -> None:
    api.admin.staff("s1")
    code = api.admin.code(["s1"])
    api.admin.post("/v1/staff/s1/departure", {})

    r = api.admin.scan(code["id"], openid="o-1")

    body = assert_error(r, 409, "no_available_staff")
    assert _stats(api, code["id"], body["position"])["refusals_by_reason"] == {
        "no_available_staff": 1
    }


MALFORMED_SCANS: list[tuple[dict[str, Any], str]] = [
    ({"visitor": {}}, "visitor"),
    ({"visitor": {"openid": None}}, "visitor"),
    ({}, "visitor"),
    ({"visitor": {"openid": "o-1"}, "referrer": "x"}, "referrer"),
    ({"visitor": {"openid": "o-1", "email": "a@b.c"}}, "visitor.email"),
    ({"visitor": {"openid": "o-1", "phone": "13812345678"}}, "visitor.phone"),
    ({"visitor": {"openid": "o" * 129}}, "visitor.openid"),
    ({"visitor": {"wecom_external_userid": "w" * 129}}, "visitor.wecom_external_userid"),
    ({"visitor": {"openid": 42}}, "visitor.openid"),
    ({"visitor": {"openid": "o-1"}, "device": "d" * 201}, "device"),
    ({"visitor": {"openid": "o-1"}, "ip": "1" * 65}, "ip"),
    ({"visitor": "o-1"}, "visitor"),
]


def test_a_malformed_scan_is_a_422_naming_the_field_and_records_nothing(api: Api) -> None:
    api.admin.staff("s1")
    code = api.admin.code(["s1"], max_scans=1)

    for body, field in MALFORMED_SCANS:
        with api.records_nothing():
            r = api.admin.post(f"/v1/channel-codes/{code['id']}/scans", body)
        assert_error(r, 422, "invalid_input", field=field)

    stats = _stats(api, code["id"])
    assert (stats["scans"], stats["refusals"]) == (0, 0)
    assert api.admin.scan(code["id"], openid="o-1").status_code == 201, "the code is untouched"


def test_a_scan_with_an_identity_of_forbidden_characters_is_a_422_naming_the_visitor_field(
    api: Api,
) -> None:
    api.admin.staff("s1")
    code = api.admin.code(["s1"])

    with api.records_nothing():
        r = api.admin.scan(code["id"], openid="has spaces and 中文")

    assert_error(r, 422, "invalid_input", field="visitor.openid")


def test_a_scan_of_an_unknown_or_malformed_code_id_records_nothing(api: Api) -> None:
    with api.records_nothing():
        assert_error(api.admin.scan(str(uuid4()), openid="o-1"), 404, "not_found")
        assert_error(api.admin.scan("not-a-uuid", openid="o-1"), 422, "invalid_input", "code_id")


BAD_CODES: list[tuple[dict[str, Any], str]] = [
    ({"staff_pool": ["ghost"]}, "staff_pool"),
    ({"staff_pool": []}, "staff_pool"),
    ({"staff_pool": ["bad id!"]}, "staff_pool"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
    ({"expires_at": "2999-01-01T00:00:00"}, "expires_at"),
    ({"expires_at": "next tuesday"}, "expires_at"),
    ({"max_scans": 0}, "max_scans"),
    ({"tags": ["x" * 41]}, "tags"),
    ({"welcome_message": "w" * 1001}, "welcome_message"),
    ({"colour": "red"}, "colour"),
]


def test_bad_channel_code_input_is_a_422_naming_the_field_and_records_nothing(api: Api) -> None:
    api.admin.staff("s1")
    for change, field in BAD_CODES:
        with api.records_nothing():
            r = api.admin.post("/v1/channel-codes", {"name": "c", "staff_pool": ["s1"], **change})
        assert_error(r, 422, "invalid_input", field=field)


def test_disabling_with_a_stale_version_or_twice_is_a_409_and_records_nothing(api: Api) -> None:
    api.admin.staff("s1")
    code = api.admin.code(["s1"])
    path = f"/v1/channel-codes/{code['id']}/disable"
    api.admin.scan(code["id"], openid="o-1")  # version 2 now

    with api.records_nothing():
        assert_error(api.admin.post(path, {}, headers={"If-Match": "1"}), 409, "stale_version")
        assert_error(api.admin.post(path, {"expected_version": 1}), 409, "stale_version")
    assert api.admin.post(path, {}, headers={"If-Match": '"2"'}).status_code == 202
    with api.records_nothing():
        assert_error(api.admin.post(path, {}), 409, "already_disabled")
        assert_error(api.admin.post(f"/v1/channel-codes/{uuid4()}/disable", {}), 404, "not_found")


def test_only_admins_and_managers_create_or_disable_codes(api: Api) -> None:
    api.admin.staff("s1")
    code = api.admin.code(["s1"])
    body = {"name": "mine", "staff_pool": ["s1"]}

    for client in (api.as_staff("s1"), api.as_role("auditor"), api.as_role("regulator")):
        with api.records_nothing():
            assert_error(client.post("/v1/channel-codes", body), 403, "forbidden")
            r = client.post(f"/v1/channel-codes/{code['id']}/disable", {})
            assert_error(r, 403, "forbidden")
    assert api.as_manager("east").post("/v1/channel-codes", body).status_code == 201


def test_a_manager_routes_a_code_only_to_staff_of_their_own_department(api: Api) -> None:
    api.admin.staff("e1", department="east")
    api.admin.staff("w1", department="west")
    manager = api.as_manager("east")

    with api.records_nothing():
        mixed = manager.post("/v1/channel-codes", {"name": "mixed", "staff_pool": ["e1", "w1"]})
        ghost = manager.post("/v1/channel-codes", {"name": "ghost", "staff_pool": ["e1", "nobody"]})
    own = manager.post("/v1/channel-codes", {"name": "own", "staff_pool": ["e1"]})

    assert_error(mixed, 403, "forbidden")
    assert_error(ghost, 422, "invalid_input", field="staff_pool")
    assert own.status_code == 201, own.text
    assert api.admin.code(["e1", "w1"])["version"] == 1, "admins are not bound to a department"


def test_auditors_and_regulators_cannot_scan_and_staff_can(api: Api) -> None:
    api.admin.staff("s1")
    code = api.admin.code(["s1"])

    for client in (api.as_role("auditor"), api.as_role("regulator")):
        with api.records_nothing():
            assert_error(client.scan(code["id"], openid="o-1"), 403, "forbidden")
    assert api.as_staff("s1").scan(code["id"], openid="o-1").status_code == 201


def test_stats_of_an_unknown_code_are_a_404_and_regulators_cannot_read_stats(api: Api) -> None:
    api.admin.staff("s1")
    code = api.admin.code(["s1"])

    assert_error(api.admin.get(f"/v1/channel-codes/{uuid4()}/stats"), 404, "not_found")
    r = api.as_role("regulator").get(f"/v1/channel-codes/{code['id']}/stats")
    assert_error(r, 403, "forbidden")
    r = api.as_role("auditor").get(
        f"/v1/channel-codes/{code['id']}/stats", params={"min_position": code["position"]}
    )
    assert r.status_code == 200
    assert r.json()["id"] == code["id"]


def test_stats_count_scans_adds_and_refusals_per_day(api: Api) -> None:
    api.admin.staff("s1")
    code = api.admin.code(["s1"], max_scans=3)
    for visitor in ("o-1", "o-2", "o-1", "o-3", "o-4"):
        api.admin.scan(code["id"], openid=visitor)

    stats = _stats(api, code["id"])

    today = datetime.now(UTC).date().isoformat()
    assert (stats["scans"], stats["adds"], stats["refusals"]) == (3, 2, 2)
    assert stats["daily"] == [{"day": today, "scans": 3, "adds": 2, "refusals": 2}]
    assert stats["last_scan_at"] is not None
    assert stats["version"] == 6


def test_disabling_needs_no_body(api: Api) -> None:
    api.admin.staff("s1")
    code = api.admin.code(["s1"])

    r = api.client.post(
        f"/v1/channel-codes/{code['id']}/disable",
        headers={"Authorization": f"Bearer {api.admin.token}"},
    )

    assert r.status_code == 202, r.text
    assert _stats(api, code["id"], r.json()["position"])["status"] == "disabled"


def test_concurrent_scans_by_different_visitors_are_all_counted_and_rotate_evenly(
    api: Api,
) -> None:
    for staff_id in ("a", "b", "c"):
        api.admin.staff(staff_id)
    code = api.admin.code(["a", "b", "c"])
    visitors = 12
    barrier = threading.Barrier(visitors)

    def scan(n: int) -> Any:
        barrier.wait()
        return api.admin.scan(code["id"], openid=f"o-{n}")

    with ThreadPoolExecutor(visitors) as pool:
        responses = list(pool.map(scan, range(visitors)))

    assert [r.status_code for r in responses] == [201] * visitors, [r.text for r in responses]
    assert len({r.json()["customer_id"] for r in responses}) == visitors
    assigned = Counter(r.json()["assigned_staff"] for r in responses)
    assert assigned == {"a": 4, "b": 4, "c": 4}
    stats = _stats(api, code["id"])
    assert (stats["scans"], stats["adds"], stats["refusals"]) == (visitors, visitors, 0)


def test_concurrent_scans_by_one_new_visitor_make_exactly_one_customer(api: Api) -> None:
    api.admin.staff("a")
    api.admin.staff("b")
    code = api.admin.code(["a", "b"])
    scans = 6
    barrier = threading.Barrier(scans)

    def scan(_: int) -> Any:
        barrier.wait()
        return api.admin.scan(code["id"], openid="o-same", unionid="u-same")

    with ThreadPoolExecutor(scans) as pool:
        responses = list(pool.map(scan, range(scans)))

    assert [r.status_code for r in responses] == [201] * scans, [r.text for r in responses]
    bodies = [r.json() for r in responses]
    assert len({b["customer_id"] for b in bodies}) == 1
    assert sum(b["new_customer"] for b in bodies) == 1
    assert {b["assigned_staff"] for b in bodies} == {"a"}, "a returning visitor keeps its owner"
    stats = _stats(api, code["id"])
    assert (stats["scans"], stats["adds"]) == (scans, 1)
    assert len(api.admin.get("/v1/customers", {"min_position": api.head()}).json()["items"]) == 1
