"""`scrm handover start|show|retry` on the embedded default and on PostgreSQL: a departed
member's customers handed to a named colleague and shown item by item; a retry with nothing
pending records nothing; a handover to oneself is refused and records nothing."""

from __future__ import annotations

import orjson

from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.factories import meta
from tests.integration.support import head as store_head
from tests.integration.support import scrm


def _staff_and_customers(settings: Settings) -> list[str]:
    c = bootstrap(settings)
    try:
        for staff_id in ("a", "b", "c"):
            c.customers.register_staff(
                staff_id=staff_id, name=staff_id, department="east", region="sh", meta=meta()
            )
        customers = [
            c.customers.add_customer(
                identities=[("wecom_external_userid", f"wm-cli-{n}")], tags=[], owner="a",
                meta=meta(),
            ).id
            for n in range(3)
        ]  # fmt: skip
        c.customers.record_departure("a", reason="resigned", meta=meta())
        return customers
    finally:
        c.close()


def _json(settings: Settings, *args: str) -> dict[str, object]:
    done = scrm(settings, "handover", *args)
    assert done.returncode == 0, done.stderr
    return orjson.loads(done.stdout)  # type: ignore[no-any-return]


def test_a_departure_handover_from_the_command_line(settings: Settings) -> None:
    customers = _staff_and_customers(settings)
    before = store_head(settings)
    refused = scrm(settings, "handover", "start", "a", "--kind", "departure", "--to", "a",
                   "--by", "hr")  # fmt: skip
    assert refused.returncode == 1 and "handover_to_self" in refused.stderr
    assert store_head(settings) == before

    started = _json(settings, "start", "a", "--kind", "departure", "--department", "east",
                    "--key", "leave-a", "--reason", "resigned", "--by", "hr")  # fmt: skip
    assert (started["status"], started["handed_over"], started["pending"]) == ("completed", 3, 0)
    shown = _json(settings, "show", "leave-a")
    owners = [i["to_staff"] for i in shown["item_list"]]  # type: ignore[union-attr]
    assert sorted(owners) == ["b", "b", "c"] or sorted(owners) == ["b", "c", "c"]
    assert {i["ref"] for i in shown["item_list"]} == set(customers)  # type: ignore[union-attr]
    head = store_head(settings)
    again = _json(settings, "retry", "leave-a", "--by", "hr")
    assert again["position"] is None and store_head(settings) == head
