"""Archive exports and the store's integrity over HTTP, on the embedded default and on
PostgreSQL: a regulator asks for an export, downloads it and it verifies; the next one chains;
refusals record nothing; auditors see the exports made, the signed checkpoints, and can have
the store verified."""

from __future__ import annotations

from pathlib import Path

from infra import exports, integrity, signing
from tests.e2e.conftest import PHONE, MakeApi, assert_error
from tests.e2e.test_archive_api import CUSTOMER_EXT, ingest, line

SCOPE = {"from": "2020-01-01T00:00:00Z", "to": "2099-01-01T00:00:00+08:00"}


def test_a_regulator_exports_downloads_and_verifies(make_api: MakeApi, tmp_path: Path) -> None:
    api = make_api()
    api.admin.staff("zhang.wei", name="张伟")
    api.customer([("phone", PHONE), ("wecom_external_userid", CUSTOMER_EXT)])
    ingest(api, [line("x-1", 1, CUSTOMER_EXT, ["zhang.wei"], "发票抬头写公司全称")])
    regulator = api.as_role("regulator")

    made = regulator.post("/v1/exports", SCOPE)
    assert made.status_code == 201, made.text
    first = made.json()
    assert first["number"] == 1 and first["previous_digest"] is None and first["events"] > 0
    archive = regulator.get(first["download"])
    assert archive.status_code == 200
    path = tmp_path / "one.tar.gz"
    path.write_bytes(archive.content)
    report = exports.verify_export(path)
    assert report.ok, report.findings
    assert report.digest == first["digest"] and report.events == first["events"]

    # Narrowed to conversations, and chained to the first.
    second = regulator.post("/v1/exports", {**SCOPE, "contexts": ["conversations"]}).json()
    assert second["number"] == 2 and second["previous_digest"] == first["digest"]
    path2 = tmp_path / "two.tar.gz"
    path2.write_bytes(regulator.get(second["download"]).content)
    assert exports.verify_export(path2, previous=path).ok

    # Who asked for what is on record; auditors see the list.
    listed = api.as_role("auditor").get("/v1/exports", params={"min_position": api.head()})
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [i["number"] for i in items] == [2, 1]
    assert items[0]["scope"]["contexts"] == ["conversations"]
    assert items[1]["digest"] == first["digest"] and items[1]["role"] == "regulator"
    assert api.as_role("auditor").get(f"/v1/exports/{first['export_id']}").json()["number"] == 1
    # The auditor sees the list but does not download personal data in clear.
    assert_error(api.as_role("auditor").get(first["download"]), 403, "forbidden")


def test_exports_are_refused_with_a_reason_and_record_nothing(make_api: MakeApi) -> None:
    api = make_api()
    api.customer([("phone", PHONE)])
    regulator = api.as_role("regulator")
    with api.records_nothing():
        for role in ("staff", "manager", "auditor"):
            claims = {"staff_id": "s1"} if role == "staff" else {}
            if role == "manager":
                claims = {"department": "east"}
            assert_error(api.as_role(role, **claims).post("/v1/exports", SCOPE), 403, "forbidden")
        r = regulator.post("/v1/exports", {**SCOPE, "from": "2026-01-01T00:00:00"})
        assert_error(r, 422, "invalid_input", "from")
        r = regulator.post("/v1/exports", {**SCOPE, "contexts": ["weather"]})
        assert_error(r, 422, "invalid_input", "contexts[0]")
        r = regulator.post("/v1/exports", {"from": SCOPE["to"], "to": SCOPE["from"]})
        assert_error(r, 422, "invalid_input", "from")
        r = regulator.post("/v1/exports", {**SCOPE, "customers": ["nobody"]})
        assert_error(r, 422, "invalid_input", "customers[0]")
        assert_error(
            regulator.get("/v1/exports/00000000-0000-0000-0000-000000000000"), 404, "not_found"
        )


def test_auditors_see_signed_checkpoints_and_have_the_store_verified(make_api: MakeApi) -> None:
    api = make_api()
    api.customer([("phone", PHONE)])
    assert api.container.notary is not None and api.container.notary.checkpoint() is not None
    auditor = api.as_role("auditor")
    seen = auditor.get("/v1/audit/checkpoints")
    assert seen.status_code == 200, seen.text
    body = seen.json()
    assert body["head"]["position"] == api.head() and body["head"]["size"] >= 1
    (cp,) = body["checkpoints"]
    assert cp["key_id"] == body["public_key"]["fingerprint"]
    public = signing.load_public(body["public_key"]["pem"].encode())
    assert body["public_key"]["fingerprint"] == signing.fingerprint(public)
    statement = integrity.statement(cp["size"], cp["position"], cp["chain"], cp["signed_at"])
    assert signing.verify(public, bytes.fromhex(cp["signature"]), statement)
    verified = auditor.post("/v1/audit/verifications")
    assert verified.status_code == 200 and verified.json()["ok"] is True
    assert verified.json()["checkpoints_verified"] == 1
    assert_error(api.as_role("regulator").post("/v1/audit/verifications"), 403, "forbidden")
    assert_error(api.as_role("staff", staff_id="s1").get("/v1/audit/checkpoints"), 403, "forbidden")
