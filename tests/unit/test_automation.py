"""Automation rules (自动化 SOP): a trigger and actions, fired once per trigger by a process
with its own checkpoint — across a restart from checkpoint 0 and a rebuild of every read
model, a message is never sent twice; a failing gateway is retried with the same key."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from api.cli_support import current
from domain.automation import rules
from domain.shared import InvalidInput
from infra.automation import sweep
from infra.bootstrap import Container
from projections.automation import automation as read
from tests.factories import meta
from tests.unit.test_loyalty import T0, order
from tests.unit.world import World, names_in_log, project

FROM = T0 - timedelta(days=1)
THANKS: dict[str, Any] = {
    "trigger": {"kind": "event", "event": "order_completed"},
    "actions": [
        {"add_tags": ["复购关怀"]},
        {"assign_owner": {"staff": "li.na"}},
        {"send_message": {"channel": "wecom", "template": "thanks", "params": {"gift": "10"}}},
    ],
}


def publish(c: Container, key: str, definition: dict[str, Any], expected: int | None = 0) -> None:
    c.automation.publish_rule(
        key, definition, effective_from=FROM, expected_version=expected, meta=meta("user:hq")
    )


def customer(c: Container, *identities: tuple[str, str], at: Any = None, tags: Any = ()) -> str:
    return c.customers.add_customer(
        identities=list(identities), tags=list(tags), owner=None, meta=meta(at=at)
    ).id


def staff(c: Container, *ids: str) -> None:
    for staff_id in ids:
        c.customers.register_staff(
            staff_id=staff_id, name=staff_id, department="east", region="杭州", meta=meta()
        )


def sent(c: Container) -> list[tuple[str, str, str, str]]:
    assert c.outreach_gateway is not None
    return c.outreach_gateway.messages()


def test_an_order_completed_fires_each_action_once_across_a_restart_and_a_rebuild(
    container: Container,
) -> None:
    c = container
    staff(c, "li.na")
    publish(c, "thanks", THANKS)
    who = customer(c, ("taobao_buyer", "buyer-1"), ("wecom_external_userid", "wmBuyer1"))
    c.orders.receive(order("T-1", 60_000, T0), "d-1", meta(source="taobao"))
    current(c)

    shown = c.customers.get_customer(UUID(who), _admin())
    assert ("复购关怀" in shown.tags, shown.owner) == (True, "li.na")
    [run] = read.runs(c.read_db, rule_key="thanks")
    assert (run["status"], run["customer_id"], run["failed"]) == ("done", who, 0)
    assert [o["outcome"] for o in run["outcomes"]] == ["taken"] * 3
    assert [m[:3] for m in sent(c)] == [("wecom", "wmBuyer1", "thanks")]
    [message] = read.outbox(c.read_db)
    assert (message["status"], message["attempts"]) == ("sent", 1)
    caused = [r.causation_id for r in c.read_log(0, 10_000) if r.name.startswith("AutomationRun")]
    assert caused and all(x.startswith("event:") for x in caused)
    seen, calls = names_in_log(c), list(c.outreach_gateway.calls)  # type: ignore[union-attr]

    # A restart that lost its checkpoint: the whole log again.
    with c.read_db.transaction() as cur:
        cur.execute("UPDATE automation_positions SET position = 0")
    current(c)
    # A rebuild of every read model, then the process from the start and a sweep once more.
    c.engine.rebuild(list(c.engine.projections), c.log_batches())
    with c.read_db.transaction() as cur:
        cur.execute("UPDATE automation_positions SET position = 0")
    current(c)
    sweep(c, T0 + timedelta(days=1))
    assert names_in_log(c) == seen
    assert c.outreach_gateway.calls == calls  # type: ignore[union-attr]
    assert len(sent(c)) == 1
    assert read.runs(c.read_db, customer_id=who)[0]["status"] == "done"


def test_a_failing_gateway_is_retried_with_the_same_key_and_sends_once(
    container: Container,
) -> None:
    c = container
    assert c.outreach_gateway is not None
    publish(c, "thanks", {**THANKS, "actions": THANKS["actions"][2:]})
    customer(c, ("taobao_buyer", "buyer-1"), ("wecom_external_userid", "wmBuyer1"))
    c.outreach_gateway.fail_next = ["errcode 45009: api freq out of limit"]
    c.orders.receive(order("T-1", 60_000, T0), "d-1", meta(source="taobao"))
    current(c)
    [message] = read.outbox(c.read_db)
    assert (message["status"], message["reason"]) == (
        "retrying",
        "errcode 45009: api freq out of limit",
    )
    assert sent(c) == []

    assert sweep(c, T0 + timedelta(hours=1))["outreach_sent"] == 1
    project(c)
    assert "outreach_sent" not in sweep(c, T0 + timedelta(hours=2))
    assert len(sent(c)) == 1 and len(set(c.outreach_gateway.calls)) == 1
    [message] = read.outbox(c.read_db)
    assert (message["status"], message["attempts"]) == ("sent", 2)


def test_a_customer_silent_for_n_days_is_swept_once_per_silence(container: Container) -> None:
    c = container
    publish(c, "wake-up", {
        "trigger": {"kind": "time", "silent_days": 30},
        "conditions": {"tags_none": ["黑名单"]},
        "actions": [{"add_tags": ["沉睡"]},
                    {"send_message": {"channel": "official_account", "template": "miss-you"}}],
    })  # fmt: skip
    quiet = customer(c, ("openid", "o-quiet"), at=T0)
    customer(c, ("openid", "o-blocked"), at=T0, tags=["黑名单"])
    project(c)
    assert sweep(c, T0 + timedelta(days=10))["fired"] == 0
    counts = sweep(c, T0 + timedelta(days=31))
    assert (counts["candidates"], counts["fired"], counts["outreach_sent"]) == (1, 1, 1)
    project(c)
    assert sweep(c, T0 + timedelta(days=31, hours=1))["fired"] == 0
    assert sent(c)[0][:3] == ("official_account", "o-quiet", "miss-you")
    assert "沉睡" in c.customers.get_customer(UUID(quiet), _admin()).tags


def test_a_birthday_fires_once_a_year_on_the_day_in_the_rules_timezone(
    container: Container,
) -> None:
    c = container
    publish(c, "birthday", {
        "trigger": {"kind": "time", "birthday": True},  # Asia/Shanghai's calendar
        "actions": [{"send_message": {"channel": "official_account", "template": "birthday"}}],
    })  # fmt: skip
    may = customer(c, ("openid", "o-may"))
    leap = customer(c, ("openid", "o-leap"))
    customer(c, ("openid", "o-none"))  # no birthday recorded: never a candidate
    c.customers.record_birthday(UUID(may), birthday=date(1990, 5, 17), scope=_admin(), meta=meta())
    c.customers.record_birthday(UUID(leap), birthday=date(2000, 2, 29), scope=_admin(), meta=meta())
    again = c.customers.record_birthday(
        UUID(may), birthday=date(1990, 5, 17), scope=_admin(), meta=meta()
    )
    assert again.position is None  # the same date again records nothing
    project(c)
    # 16:30 UTC on 16 May is already 17 May in Shanghai.
    assert sweep(c, datetime(2027, 5, 16, 15, 0, tzinfo=UTC))["fired"] == 0
    assert sweep(c, datetime(2027, 5, 16, 16, 30, tzinfo=UTC))["fired"] == 1
    project(c)
    assert sweep(c, datetime(2027, 5, 17, 10, 0, tzinfo=UTC))["fired"] == 0  # once that year
    # 29 February's birthday is kept on the 28th in a year without a 29th, once.
    assert sweep(c, datetime(2027, 2, 28, 4, 0, tzinfo=UTC))["fired"] == 1
    project(c)
    assert sweep(c, datetime(2027, 3, 1, 4, 0, tzinfo=UTC))["fired"] == 0
    assert sweep(c, datetime(2028, 2, 28, 4, 0, tzinfo=UTC))["fired"] == 0  # 2028 has a 29th
    assert sweep(c, datetime(2028, 2, 29, 4, 0, tzinfo=UTC))["fired"] == 1
    project(c)
    assert [m[1] for m in sent(c)] == ["o-may", "o-leap", "o-leap"]
    # Nothing readable in the read model: only a keyed hash of the month and day.
    rows = c.read_db.query("SELECT customer_id, day_key FROM portrait_birthdays")
    assert len(rows) == 2 and not any("05-17" in str(k) or "1990" in str(k) for _, k in rows)


def test_days_after_purchase_and_a_message_nobody_can_receive(container: Container) -> None:
    c = container
    publish(c, "review", {
        "trigger": {"kind": "time", "days_after_purchase": 7},
        "actions": [{"send_message": {"channel": "wecom", "template": "review"}},
                    {"remove_tags": ["新客"]}],
    })  # fmt: skip
    who = customer(c, ("taobao_buyer", "buyer-1"), tags=["新客"])  # no WeCom contact
    c.orders.receive(order("T-1", 60_000, T0), "d-1", meta(source="taobao"))
    project(c)
    assert sweep(c, T0 + timedelta(days=6))["fired"] == 0
    assert sweep(c, T0 + timedelta(days=8))["fired"] == 1
    project(c)
    assert sweep(c, T0 + timedelta(days=9))["fired"] == 0
    assert sweep(c, T0 + timedelta(days=30))["fired"] == 0  # past the catch-up window
    [message] = read.outbox(c.read_db, customer_id=who)
    assert (message["status"], message["reason"]) == ("failed", "no_wecom_external_userid")
    assert sent(c) == []
    assert c.customers.get_customer(UUID(who), _admin()).tags == []


def test_a_schedule_fires_once_per_period_for_its_audience(container: Container) -> None:
    c = container
    staff(c, "a", "b")
    publish(c, "vip-daily", {
        "trigger": {"kind": "schedule", "every": "daily", "at": "09:00",
                    "timezone": "Asia/Shanghai"},
        "conditions": {"tags_all": ["vip"]},
        "actions": [{"assign_owner": {"department": "east"}}],
    })  # fmt: skip
    vips = [customer(c, ("openid", f"o-{i}"), tags=["vip"]) for i in range(3)]
    customer(c, ("openid", "o-plain"))
    project(c)
    # 09:30 in Shanghai on 2 March: the day's slot has come, once.
    at = T0 + timedelta(days=1, hours=-0.5)
    assert sweep(c, at)["fired"] == 3
    project(c)
    assert sweep(c, at + timedelta(hours=3))["fired"] == 0
    owners = sorted(str(c.customers.get_customer(UUID(v), _admin()).owner) for v in vips)
    assert owners == ["a", "a", "b"]  # round-robin by load
    assert sweep(c, at + timedelta(days=1))["fired"] == 3  # the next day's slot


def test_a_segment_entered_fires_and_a_paused_rule_does_not(container: Container) -> None:
    c = container
    segment = c.segments.define(
        name="重点客户", rule={"field": "tags", "op": "contains", "value": "vip"}, auto_tag=None,
        meta=meta(),
    ).id  # fmt: skip
    publish(c, "welcome-vip", {
        "trigger": {"kind": "event", "event": "segment_entered", "segment_id": segment},
        "actions": [{"add_tags": ["专属顾问"]}],
    })  # fmt: skip
    c.automation.pause("welcome-vip", reason="copy under review", meta=meta())
    first = customer(c, ("openid", "o-1"), tags=["vip"])
    _evaluate(c)
    assert read.runs(c.read_db) == []
    c.automation.resume("welcome-vip", reason="", meta=meta())
    second = customer(c, ("openid", "o-2"), tags=["vip"])
    _evaluate(c)
    [run] = read.runs(c.read_db)
    assert run["customer_id"] == second
    assert "专属顾问" not in c.customers.get_customer(UUID(first), _admin()).tags
    assert read.rule(c.read_db, "welcome-vip")["status"] == "active"  # type: ignore[index]


def test_a_metric_fires_once_per_crossing_and_a_failed_action_is_recorded(
    container: Container,
) -> None:
    c = container
    World(c.customers)  # scans of channel codes, some never added
    publish(c, "dropoff", {
        "trigger": {"kind": "metric", "metric": "channel_dropoff", "window_days": 3650,
                    "op": ">=", "threshold": "0"},
        "actions": [{"open_ticket": {"workflow": "no-such-flow", "service_type": "check",
                                     "description": "渠道流失率上升"}}],
    })  # fmt: skip
    project(c)
    at = T0 + timedelta(days=1)
    assert sweep(c, at)["fired"] == 1
    project(c)
    assert sweep(c, at + timedelta(hours=1))["fired"] == 0  # still over: the same crossing
    [run] = read.runs(c.read_db, rule_key="dropoff")
    assert run["trigger_key"] == "metric:1" and run["customer_id"] is None
    assert [(o["outcome"], o["detail"]) for o in run["outcomes"]] == [("failed", "not_found")]


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ({"trigger": {"kind": "soon"}, "actions": [{"add_tags": ["x"]}]}, "trigger.kind"),
        ({"trigger": {"kind": "time", "birthday": "yes"}, "actions": [{"add_tags": ["x"]}]},
         "trigger.birthday"),
        ({"trigger": {"kind": "time", "birthday": True, "timezone": "Mars/Base"},
          "actions": [{"add_tags": ["x"]}]}, "trigger.timezone"),
        ({"trigger": {"kind": "time", "birthday": True, "silent_days": 3},
          "actions": [{"add_tags": ["x"]}]}, "trigger"),
        ({"trigger": {"kind": "time", "silent_days": 3, "timezone": "UTC"},
          "actions": [{"add_tags": ["x"]}]}, "trigger.timezone"),
        ({"trigger": {"kind": "event", "event": "order_completed"}, "actions": []}, "actions"),
        ({"trigger": {"kind": "event", "event": "order_completed"},
          "actions": [{"add_tags": ["x"]}, {"send_message": {"channel": "sms", "template": "t"}}]},
         "actions[1].send_message.channel"),
        ({"trigger": {"kind": "schedule", "every": "weekly", "at": "9am"},
          "actions": [{"add_tags": ["x"]}]}, "trigger.at"),
        ({"trigger": {"kind": "metric", "metric": "channel_dropoff", "threshold": "0.1"},
          "actions": [{"add_tags": ["x"]}]}, "actions[0]"),
    ],
)  # fmt: skip
def test_a_bad_rule_is_refused_naming_the_part(definition: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        rules.parse(definition)
    assert refused.value.field == field


def _evaluate(c: Container) -> None:
    project(c)
    assert c.segment_evaluator is not None
    c.segment_evaluator.run_until_caught_up()
    current(c)


def _admin() -> Any:
    from domain.scope import Scope

    return Scope(role="admin")
