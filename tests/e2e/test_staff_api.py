"""/v1/staff: registering staff, recording departures, the staff directory."""

from __future__ import annotations

import time

from projections import all_projections
from tests.e2e.conftest import Api, MakeApi, assert_error

READ_MODELS = [p.name for p in all_projections()]

STAFF = {"id": "zhang.san", "name": "张三", "department": "east", "region": "shanghai"}


def test_registering_staff_answers_201_with_the_position_of_its_event(api: Api) -> None:
    r = api.admin.post("/v1/staff", STAFF)

    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"] == "zhang.san"
    assert body["version"] == 1
    assert body["position"] == api.head()


def test_the_directory_read_with_min_position_shows_the_staff_just_registered(
    make_api: MakeApi,
) -> None:
    # A slow follower: without waiting, the read model would usually not have the row yet.
    api = make_api(poll_interval=0.25)
    position = api.admin.post("/v1/staff", STAFF).json()["position"]

    r = api.admin.get("/v1/staff", params={"min_position": position})

    assert r.status_code == 200, r.text
    assert r.json()["items"] == [{**STAFF, "departed_at": None}]


def test_the_directory_honours_the_x_min_position_header_too(make_api: MakeApi) -> None:
    api = make_api(poll_interval=0.25)
    position = api.admin.staff("li.si", name="李四")["position"]

    r = api.admin.get("/v1/staff", headers={"X-Min-Position": str(position)})

    assert r.status_code == 200
    assert [s["id"] for s in r.json()["items"]] == ["li.si"]


def test_a_min_position_never_reached_answers_503_not_caught_up_with_the_lag(
    make_api: MakeApi,
) -> None:
    api = make_api(min_position_timeout=0.3)
    head = api.admin.staff("s1")["position"]
    api.container.engine.wait_for(head, 5)
    wanted = head + 1000

    started = time.monotonic()
    r = api.admin.get("/v1/staff", params={"min_position": wanted})
    waited = time.monotonic() - started

    body = assert_error(r, 503, "not_caught_up")
    assert r.headers["retry-after"] == "1"
    assert waited >= 0.3, "the query must wait (bounded) before giving up"
    assert waited < 3
    assert body["min_position"] == wanted
    assert body["positions"]["staff"] == head
    assert body["lag"] == dict.fromkeys(READ_MODELS, 1000)


def test_a_min_position_header_never_reached_answers_503_too(make_api: MakeApi) -> None:
    api = make_api(min_position_timeout=0.3)

    r = api.admin.get("/v1/staff", headers={"X-Min-Position": "99999"})

    body = assert_error(r, 503, "not_caught_up")
    assert body["lag"]["staff"] == 99999


def test_a_caller_without_access_is_refused_at_once_not_after_the_read_your_writes_wait(
    make_api: MakeApi,
) -> None:
    api = make_api(min_position_timeout=2.0)
    far = {"min_position": 10**9}

    regulator = {"Authorization": f"Bearer {api.token('regulator')}"}

    for headers, status, code in (({}, 401, "unauthorized"), (regulator, 403, "forbidden")):
        started = time.monotonic()
        r = api.client.get("/v1/staff", params=far, headers=headers)
        assert time.monotonic() - started < 1.0, "refused callers must not hold a worker"
        body = assert_error(r, status, code)
        assert "positions" not in body and "lag" not in body


def test_a_negative_min_position_is_a_422(api: Api) -> None:
    assert_error(api.admin.get("/v1/staff", params={"min_position": -1}), 422, "invalid_input")


def test_a_departure_answers_202_and_shows_in_the_directory(api: Api) -> None:
    api.admin.staff("s1")

    r = api.admin.post("/v1/staff/s1/departure", {"reason": "left the company"})

    assert r.status_code == 202, r.text
    assert r.json()["position"] == api.head()
    assert r.json()["version"] == 2
    items = api.admin.get("/v1/staff", params={"min_position": r.json()["position"]}).json()
    assert items["items"][0]["departed_at"] is not None


def test_a_departure_needs_no_body(api: Api) -> None:
    api.admin.staff("s1")

    r = api.client.post(
        "/v1/staff/s1/departure", headers={"Authorization": f"Bearer {api.admin.token}"}
    )

    assert r.status_code == 202, r.text


def test_a_second_departure_is_a_409_and_records_nothing(api: Api) -> None:
    api.admin.staff("s1")
    api.admin.post("/v1/staff/s1/departure", {})

    with api.records_nothing():
        r = api.admin.post("/v1/staff/s1/departure", {})

    assert_error(r, 409, "already_departed")


def test_the_departure_of_unknown_staff_is_a_404(api: Api) -> None:
    with api.records_nothing():
        assert_error(api.admin.post("/v1/staff/nobody/departure", {}), 404, "not_found")


def test_a_duplicate_staff_id_is_a_409_already_exists_and_records_nothing(api: Api) -> None:
    api.admin.post("/v1/staff", STAFF)

    with api.records_nothing():
        r = api.admin.post("/v1/staff", {**STAFF, "name": "另一个"})

    assert_error(r, 409, "already_exists", field="id")


BAD_STAFF = [
    ({"id": "bad id!"}, "id"),
    ({"id": "-starts-with-dash"}, "id"),
    ({"id": ""}, "id"),
    ({"id": "x" * 65}, "id"),
    ({"name": "   "}, "name"),
    ({"department": ""}, "department"),
    ({"region": "r" * 81}, "region"),
    ({"nickname": "zs"}, "nickname"),
]


def test_bad_staff_input_is_a_422_naming_the_field_and_records_nothing(api: Api) -> None:
    for change, field in BAD_STAFF:
        with api.records_nothing():
            r = api.admin.post("/v1/staff", {**STAFF, **change})
        assert_error(r, 422, "invalid_input", field=field)

    missing = {k: v for k, v in STAFF.items() if k != "region"}
    with api.records_nothing():
        assert_error(api.admin.post("/v1/staff", missing), 422, "invalid_input", field="region")
    assert api.admin.get("/v1/staff", params={"min_position": api.head()}).json()["items"] == []


def test_a_body_that_is_not_a_json_object_is_a_422_without_a_bogus_field(api: Api) -> None:
    headers = {"Authorization": f"Bearer {api.admin.token}", "Content-Type": "application/json"}

    with api.records_nothing():
        broken = api.client.post("/v1/staff", content=b'{"id": "s1",', headers=headers)
        array = api.client.post("/v1/staff", content=b"[1, 2]", headers=headers)
        missing = api.client.post("/v1/staff", headers=headers)

    body = assert_error(broken, 422, "invalid_input")
    assert "field" not in body
    assert "not valid JSON" in body["detail"]
    assert "field" not in assert_error(array, 422, "invalid_input")
    assert assert_error(missing, 422, "invalid_input")["detail"] == "a JSON object body is required"


def test_a_manager_registers_staff_in_their_own_department_only(api: Api) -> None:
    manager = api.as_manager("east")

    assert manager.post("/v1/staff", STAFF).status_code == 201
    with api.records_nothing():
        r = manager.post("/v1/staff", {**STAFF, "id": "w1", "department": "west"})
    assert_error(r, 403, "forbidden")


def test_a_manager_records_departures_in_their_own_department_only(api: Api) -> None:
    api.admin.staff("w1", department="west")

    with api.records_nothing():
        r = api.as_manager("east").post("/v1/staff/w1/departure", {})

    assert_error(r, 403, "forbidden")


def test_a_manager_sees_only_their_departments_staff(api: Api) -> None:
    api.admin.staff("e1", department="east")
    api.admin.staff("w1", department="west")

    r = api.as_manager("west").get("/v1/staff", params={"min_position": api.head()})

    assert [s["id"] for s in r.json()["items"]] == ["w1"]


def test_only_admins_and_managers_register_staff(api: Api) -> None:
    for client in (api.as_staff("s9"), api.as_role("auditor"), api.as_role("regulator")):
        with api.records_nothing():
            assert_error(client.post("/v1/staff", STAFF), 403, "forbidden")


def test_an_auditor_reads_the_directory_and_a_regulator_cannot(api: Api) -> None:
    api.admin.staff("s1")
    params = {"min_position": api.head()}

    assert [s["id"] for s in api.as_role("auditor").get("/v1/staff", params).json()["items"]] == [
        "s1"
    ]
    assert_error(api.as_role("regulator").get("/v1/staff", params), 403, "forbidden")


def test_the_directory_needs_a_token(api: Api) -> None:
    r = api.client.get("/v1/staff")

    assert_error(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"
