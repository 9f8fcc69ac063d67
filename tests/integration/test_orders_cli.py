"""`scrm orders import` as a user runs it, on the embedded default and on PostgreSQL; and an
order push reaching the read model through the relay and the projector (NATS)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.factories import ApiClient
from tests.integration.support import scrm
from tests.integration.test_server_mode import caught_up, running, wait_until

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent.parent / "fixtures" / "orders"


def test_import_is_one_batch_per_transaction_and_a_rerun_changes_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    payloads = [
        orjson.loads(p.read_bytes())
        for p in sorted((FIXTURES / "taobao").glob("*.json"))
        if not p.stem.startswith("missing")
    ]
    file = tmp_path / "taobao.jsonl"
    file.write_bytes(b"\n".join(orjson.dumps(p) for p in payloads))
    first = scrm(settings, "orders", "import", "taobao", str(file), "--batch", "3")
    assert first.returncode == 0, first.stderr
    assert f"batches 3, applied {len(payloads)}, stale 0, duplicates 0" in first.stdout
    again = scrm(settings, "orders", "import", "taobao", str(file), "--batch", "3")
    assert f"applied 0, stale 0, duplicates {len(payloads)}" in again.stdout

    c = bootstrap(settings)
    try:
        placed = [e for e in c.read_log(0, 100_000) if e.name == "OrderPlaced"]
        assert len(placed) == len(payloads)
        assert all(e.source == "taobao" and e.actor == "system:orders-import" for e in placed)
    finally:
        c.close()


def test_import_refuses_a_bad_payload_naming_it_and_keeps_the_batches_before(
    settings: Settings, tmp_path: Path
) -> None:
    good = orjson.loads((FIXTURES / "jd" / "finished.json").read_bytes())
    bad = orjson.loads((FIXTURES / "jd" / "missing_item_total.json").read_bytes())
    file = tmp_path / "jd.jsonl"
    file.write_bytes(orjson.dumps(good) + b"\n" + orjson.dumps(bad))
    result = scrm(settings, "orders", "import", "jd", str(file), "--batch", "1")
    assert result.returncode == 1
    assert "refused" in result.stderr and "line 2" in result.stderr
    c = bootstrap(settings)
    try:
        assert len([e for e in c.read_log(0, 100_000) if e.name == "OrderPlaced"]) == 1
    finally:
        c.close()


def test_a_pushed_order_reaches_the_read_model_through_nats(server_settings: Settings) -> None:
    c = bootstrap(server_settings)
    token = c.tokens.create("admin")
    payload = (FIXTURES / "pdd" / "group_buy_forming.json").read_bytes()
    with (
        running("relay", "project", settings=server_settings),
        TestClient(create_app(container=c)) as tc,
    ):
        r = tc.post(
            "/v1/integrations/orders/pdd",
            content=payload,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200, r.text
        (outcome,) = r.json()["orders"]
        wait_until(lambda: caught_up(c), what="the projector at the head")
        order = ApiClient(tc, token).get(f"/v1/orders/{outcome['order_id']}").json()
        assert order["platform"] == "pdd" and order["group_id"]
