"""Erasure, legal holds and the scheduled process on PostgreSQL + NATS: the API process, `scrm
relay`, `scrm project` and `scrm privacy run` as separate processes sharing the stores."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from domain.customers.aggregates import Customer
from domain.customers.privacy import key_ids
from infra.bootstrap import Container, bootstrap
from infra.settings import Settings
from tests.factories import ApiClient, meta
from tests.integration.support import scrm
from tests.integration.test_server_mode import caught_up, running, wait_until

pytestmark = pytest.mark.integration

HELD, FREE = "wmHeldCustomer001", "wmFreeCustomer002"


def archive_line(msgid: str, seq: int, ext: str, text: str) -> bytes:
    return orjson.dumps(
        {
            "seq": seq,
            "msgid": msgid,
            "action": "send",
            "from": "zhang",
            "tolist": [ext],
            "roomid": "",
            "msgtime": 1_767_000_000_000 + seq * 1000,
            "msgtype": "text",
            "text": {"content": text},
        }
    )


def conversations(api: ApiClient, c: Container, **params: Any) -> Any:
    wait_until(lambda: caught_up(c), what="read models at the head")
    r = api.get("/v1/conversations", params={"purpose": "合规抽查复核", **params})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_erasure_through_the_api_the_projector_and_the_cli(server_settings: Settings) -> None:
    c = bootstrap(server_settings)
    admin_token = c.tokens.create("admin")
    auditor_token = c.tokens.create("auditor")
    with (
        running("relay", "project", settings=server_settings),
        TestClient(create_app(container=c)) as tc,
    ):
        admin, auditor = ApiClient(tc, admin_token), ApiClient(tc, auditor_token)
        admin.staff("zhang")
        ids = {}
        for ext in (HELD, FREE):
            r = admin.post(
                "/v1/customers",
                {"identities": [{"kind": "wecom_external_userid", "value": ext}], "owner": "zhang"},
            )
            assert r.status_code == 201, r.text
            ids[ext] = r.json()["id"]
        batch = b"\n".join(
            [archive_line("p-1", 1, HELD, "保本收益"), archive_line("p-2", 2, FREE, "稳赚不赔")]
        )
        r = tc.post(
            "/v1/archive/batches",
            content=batch,
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        assert r.status_code == 201, r.text

        hold = admin.post(
            "/v1/legal-holds",
            {"customer_id": ids[HELD], "case_reference": "case-7", "authority": "court"},
        ).json()["hold_id"]
        for ext in (HELD, FREE):
            r = admin.post(f"/v1/customers/{ids[ext]}/erasure-requests", {"received_via": "app"})
            assert r.status_code == 202, r.text
        assert r.json()["status"] == "erased"  # FREE: nothing keeps it

        # Through the relay and the projector: FREE reads as erased, HELD as retained.
        items = conversations(auditor, c, staff_id="zhang")
        assert {m["msgid"]: m["content"] for m in items} == {
            "p-1": {"text": {"content": "保本收益"}},
            "p-2": "[erased]",
        }
        assert conversations(auditor, c, keyword="稳赚不赔") == []
        assert [m["msgid"] for m in conversations(auditor, c, keyword="保本")] == ["p-1"]
        assert conversations(admin, c, keyword="保本") == []  # restricted: not for processing

        # The scheduled process as its own process: the hold still keeps HELD.
        run = scrm(server_settings, "privacy", "run")
        assert run.returncode == 0, run.stderr
        assert "erased 0, still waiting 1" in run.stdout

        released = admin.post(f"/v1/legal-holds/{hold}/release", {})
        assert released.json()["erasure"]["status"] == "erased"
        items = conversations(auditor, c, staff_id="zhang")
        assert [m["content"] for m in items] == ["[erased]", "[erased]"]


def test_the_scheduled_process_finishes_an_erasure_a_crash_interrupted(
    server_settings: Settings,
) -> None:
    c = bootstrap(server_settings)
    try:
        added = c.customers.add_customer(
            identities=[("wecom_external_userid", FREE), ("phone", "13812345678")],
            tags=[],
            owner=None,
            meta=meta(),
        )
        customer = c.customers.load(Customer, UUID(added.id), "customer")
        sealed = c.vault.seal(key_ids(customer)[1], "archived words")
        customer.restrict_for_erasure("phone", meta())
        # Recorded, then the process died before destroying the keys.
        customer.record_erased([str(k) for k in key_ids(customer)], None, meta())
        c.customers.save_all(customer)
        assert c.vault.alive(set(key_ids(customer))) == set(key_ids(customer))
        with running("relay", "project", settings=server_settings):
            wait_until(lambda: caught_up(c), what="read models at the head")
        run = scrm(server_settings, "privacy", "run")
        assert run.returncode == 0, run.stderr
        assert "keys destroyed 2" in run.stdout
        assert c.vault.alive(set(key_ids(customer))) == set()
        assert c.vault.unseal(key_ids(customer)[1], sealed) is None
        again = scrm(server_settings, "privacy", "run")
        assert "keys destroyed 0" in again.stdout
    finally:
        c.close()
