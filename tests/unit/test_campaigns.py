"""Fission campaigns (营销裂变): participants invite others with their code, the invite tree
keeps who brought whom, successful invitations reach reward tiers, each rewarded once (a
coupon saved with its decision, a gift as an event), the budget cap withholds rewards past
it, and each fraud rule flags the invitation with its reason and holds the reward for
review. The process that does it records nothing twice, across a restart or a rebuild."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.cli_support import current
from domain.campaigns.rules import Rules
from domain.customers.wecom import ContactChange
from domain.shared import Conflict, Gone, InvalidInput, NotFound
from infra.bootstrap import Container
from projections.campaigns import campaigns as read
from projections.promotions import promotions
from tests.factories import meta
from tests.unit.world import embedded_only, names_in_log

T0 = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)
KEY = "spring-fx"
CAMPAIGN: dict[str, Any] = {
    "name": "春季裂变",
    "starts_at": "2026-04-01T00:00:00+08:00",
    "ends_at": "2026-07-01T00:00:00+08:00",
    "success": "contact_added",
    "tiers": [
        {"invites": 2, "reward": {"coupon": {"kind": "amount_off", "value": 2_000}}},
        {"invites": 3, "reward": {"gift": {"sku": "MUG-1", "name": "马克杯", "cost": 3_500}}},
    ],
    "fraud": {"window_minutes": 10, "device_burst": 3, "ip_burst": 4, "quick_leave_minutes": 60},
    "landing_url": "https://h5.example.com/fx",
}


def publish(c: Container, **changes: Any) -> None:
    c.campaigns.publish(
        KEY,
        {**CAMPAIGN, **changes},
        effective_from=T0 - timedelta(days=40),
        expected_version=None,
        meta=meta("user:ops", at=T0 - timedelta(days=40)),
    )


def customer(c: Container, name: str) -> str:
    return c.customers.add_customer(
        identities=[("wecom_external_userid", f"wm-{name}")], tags=[], owner=None, meta=meta()
    ).id


def join(c: Container, who: str, at: datetime = T0) -> str:
    return c.campaigns.join(KEY, who, meta=meta(at=at)).code


def invite(
    c: Container,
    code: str,
    who: str,
    at: datetime,
    device: str | None = None,
    ip: str | None = None,
) -> Any:
    return c.campaigns.invite(
        KEY, code, who, device=device or f"dev-{who}", ip=ip or f"ip-{who}", meta=meta(at=at)
    )


def contact(c: Container, name: str, at: datetime, change: str = "add_external_contact") -> None:
    c.customers.apply_contact_change(
        ContactChange(change, "zhang.wei", f"wm-{name}", f"{change}-{name}-{at}", at),
        meta("integration:wecom", at=at, source="wecom"),
    )


def people(c: Container, *names: str) -> dict[str, str]:
    return {n: customer(c, n) for n in names}


def rewards(c: Container, who: str) -> list[tuple[int, str, list[str]]]:
    return [
        (r["tier"], r["status"], r["reasons"])
        for r in read.rewards(c.read_db, KEY, customer_id=who)
    ]


def flags(c: Container) -> list[tuple[str, str, str]]:
    return sorted((f["inviter"], f["invitee"], f["reason"]) for f in read.flags_of(c.read_db, KEY))


def test_successful_invitations_reach_tiers_rewarded_once_across_a_restart_and_a_rebuild(
    container: Container,
) -> None:
    c = container
    publish(c)
    p = people(c, "a", "b", "c", "d")
    code = join(c, p["a"])
    assert join(c, p["a"]) == code  # joining again: the same code, nothing recorded
    for i, n in enumerate("bcd"):
        invite(c, code, p[n], T0 + timedelta(hours=i + 1))
    contact(c, "b", T0 + timedelta(hours=5))
    current(c)
    assert rewards(c, p["a"]) == []  # one success: below the first tier

    contact(c, "c", T0 + timedelta(hours=6))
    contact(c, "d", T0 + timedelta(hours=7))
    contact(c, "b", T0 + timedelta(hours=8), "del_external_contact")  # long after: no flag
    current(c)
    assert rewards(c, p["a"]) == [(2, "issued", []), (3, "issued", [])]
    coupon = read.rewards(c.read_db, KEY, customer_id=p["a"])[0]["coupon_code"]
    issued = promotions.find_coupon(c.read_db, coupon)
    assert issued is not None
    assert (issued["customer_id"], issued["issued_by"], issued["value"]) == (
        p["a"], "campaign", "2000",
    )  # fmt: skip
    assert flags(c) == []

    seen = names_in_log(c)
    assert seen.count("ParticipantInviteSucceeded") == 3
    assert seen.count("ParticipantRewardIssued") == 2 and seen.count("CouponIssued") == 1
    # A restart that lost its checkpoint, then a rebuild: the whole log again, nothing new.
    with c.read_db.transaction() as cur:
        cur.execute("UPDATE fission_positions SET position = 0")
    current(c)
    c.engine.rebuild(list(c.engine.projections), c.log_batches())
    with c.read_db.transaction() as cur:
        cur.execute("UPDATE fission_positions SET position = 0")
    current(c)
    assert names_in_log(c) == seen
    caused = [r.causation_id for r in c.read_log(0, 10_000) if r.name == "ParticipantRewardIssued"]
    assert all(x.startswith("event:") for x in caused)

    stats = read.stats(c.read_db, KEY)
    assert stats["funnel"] == {
        "views": 0, "joins": 4, "invitees": 3, "successful_invites": 3, "rewards": 2,
    }  # fmt: skip
    assert stats["reward_cost"] == 5_500 and stats["cost_per_acquired_customer"] == 1_833


@embedded_only
def test_the_invite_tree_keeps_who_brought_whom_its_depth_and_paths(container: Container) -> None:
    c = container
    publish(c)
    p = people(c, "a", "b", "c", "d")
    code_a = join(c, p["a"])
    joined_b = invite(c, code_a, p["b"], T0)
    assert joined_b.link == f"https://h5.example.com/fx?invite={joined_b.code}"
    invite(c, code_a, p["c"], T0 + timedelta(minutes=1))
    joined_d = invite(c, joined_b.code, p["d"], T0)
    assert (joined_d.depth, joined_d.path, joined_d.invited_by) == (
        2, [p["a"], p["b"], p["d"]], p["b"],
    )  # fmt: skip
    c.campaigns.record_view(KEY, code_a, meta=meta())
    c.campaigns.record_view(KEY, None, meta=meta())
    current(c)
    shown = read.participant(c.read_db, KEY, p["d"])
    assert shown is not None and shown["path"] == [p["a"], p["b"], p["d"]]
    assert [i["invitee"] for i in read.participant(c.read_db, KEY, p["a"])["invites"]] == [  # type: ignore[index]
        p["b"], p["c"],
    ]  # fmt: skip
    stats = read.stats(c.read_db, KEY)
    assert stats["propagation"] == {
        "depth": 2, "breadth": 2, "participants_by_depth": {"0": 1, "1": 2, "2": 1},
    }  # fmt: skip
    assert stats["funnel"]["views"] == 2


@embedded_only
def test_the_budget_cap_withholds_the_rewards_past_it(container: Container) -> None:
    c = container
    publish(c, budget=3_000)
    p = people(c, "a", "b", "c", "d")
    code = join(c, p["a"])
    for i, n in enumerate("bcd"):
        invite(c, code, p[n], T0 + timedelta(hours=i))
        contact(c, n, T0 + timedelta(hours=i, minutes=30))
    current(c)
    assert rewards(c, p["a"]) == [(2, "issued", []), (3, "withheld", ["budget_exhausted"])]
    assert read.stats(c.read_db, KEY)["reward_cost"] == 2_000


@embedded_only
def test_a_self_invitation_is_flagged_and_holds_the_reward_until_released(
    container: Container,
) -> None:
    c = container
    publish(c)
    p = people(c, "a", "b")
    code = join(c, p["a"])
    assert invite(c, code, p["a"], T0).flags == ("self_invite",)
    invite(c, code, p["b"], T0 + timedelta(hours=1))
    contact(c, "a", T0 + timedelta(hours=2))
    contact(c, "b", T0 + timedelta(hours=3))
    current(c)
    assert flags(c) == [(p["a"], p["a"], "self_invite")]
    assert rewards(c, p["a"]) == [(2, "held", ["self_invite"])]
    assert names_in_log(c).count("CouponIssued") == 0

    c.campaigns.release(KEY, p["a"], 2, "checked: a family account", meta=meta("staff:lead"))
    current(c)
    assert rewards(c, p["a"]) == [(2, "issued", ["self_invite"])]  # why it was held stays
    assert read.rewards(c.read_db, KEY)[0]["note"] == "checked: a family account"
    assert names_in_log(c).count("CouponIssued") == 1
    with pytest.raises(Conflict) as again:
        c.campaigns.release(KEY, p["a"], 2, "", meta=meta())
    assert again.value.code == "reward_issued"
    with pytest.raises(NotFound):
        c.campaigns.release(KEY, p["a"], 3, "", meta=meta())


@embedded_only
def test_inviting_someone_above_you_in_the_tree_is_flagged_as_a_cycle(
    container: Container,
) -> None:
    c = container
    publish(c)
    p = people(c, "a", "b", "x")
    code_b = invite(c, join(c, p["a"]), p["b"], T0).code
    assert invite(c, code_b, p["a"], T0 + timedelta(minutes=1)).flags == ("cycle",)
    current(c)
    [flag] = read.flags_of(c.read_db, KEY)
    assert (flag["inviter"], flag["invitee"], flag["reason"]) == (p["b"], p["a"], "cycle")
    assert flag["evidence"] == {"path": [p["a"], p["b"]]}
    # Anyone else already in the campaign is refused, recording nothing.
    join(c, p["x"])
    head = c.head()
    with pytest.raises(Conflict) as taken:
        invite(c, code_b, p["x"], T0)
    assert taken.value.code == "already_participant" and c.head() == head


@embedded_only
@pytest.mark.parametrize(
    ("rule", "same", "reason"), [("device", 3, "device_burst"), ("ip", 4, "ip_burst")]
)
def test_many_invitees_from_one_device_or_ip_in_a_burst_are_flagged_and_rejected(
    container: Container, rule: str, same: int, reason: str
) -> None:
    c = container
    publish(c)
    names = [f"n{i}" for i in range(same + 1)]
    p = people(c, "a", *names)
    code = join(c, p["a"])
    for i, n in enumerate(names[:same]):  # within ten minutes, one device (or IP)
        shared = {rule: "the-same-one"}
        invite(c, code, p[n], T0 + timedelta(minutes=2 * i), **shared)
    invite(c, code, p[names[-1]], T0 + timedelta(hours=2))  # later, on its own: clean
    current(c)
    assert flags(c) == sorted((p["a"], p[n], reason) for n in names[:same])
    evidence = read.flags_of(c.read_db, KEY)[0]["evidence"]
    assert evidence["count"] == same and evidence["window_minutes"] == 10

    contact(c, names[0], T0 + timedelta(hours=3))
    contact(c, names[-1], T0 + timedelta(hours=3))
    current(c)
    assert rewards(c, p["a"]) == [(2, "held", [reason])]
    c.campaigns.reject(KEY, p["a"], 2, "a phone farm", meta=meta("staff:lead"))
    current(c)
    assert rewards(c, p["a"]) == [(2, "rejected", [reason])]
    with pytest.raises(Gone) as gone:
        c.campaigns.release(KEY, p["a"], 2, "", meta=meta())
    assert gone.value.code == "reward_rejected"
    # The rejected invitation no longer counts: one more success reaches no tier.
    shown = read.participant(c.read_db, KEY, p["a"])
    assert shown is not None and shown["successful_invites"] == 1


@embedded_only
def test_an_invitee_who_leaves_again_right_away_is_flagged_and_holds_the_reward(
    container: Container,
) -> None:
    c = container
    publish(c)
    p = people(c, "a", "b", "c")
    code = join(c, p["a"])
    invite(c, code, p["b"], T0)
    invite(c, code, p["c"], T0)
    contact(c, "b", T0 + timedelta(hours=1))
    contact(c, "b", T0 + timedelta(hours=1, minutes=5), "del_follow_user")  # 5 minutes later
    contact(c, "c", T0 + timedelta(hours=2))
    current(c)
    [flag] = read.flags_of(c.read_db, KEY)
    assert (flag["invitee"], flag["reason"]) == (p["b"], "quick_leave")
    assert flag["evidence"] == {"stayed_minutes": 5, "by": "customer"}
    assert rewards(c, p["a"]) == [(2, "held", ["quick_leave"])]


@embedded_only
def test_a_first_order_counts_when_the_campaign_says_so(container: Container) -> None:
    from tests.unit.test_loyalty import order

    c = container
    publish(c, success="first_order")
    a = customer(c, "a")
    buyers = [
        c.customers.add_customer(
            identities=[("taobao_buyer", f"buyer-{i}")], tags=[], owner=None, meta=meta()
        ).id
        for i in range(2)
    ]
    code = join(c, a)
    for who in buyers:
        invite(c, code, who, T0)
    for i, _ in enumerate(buyers):
        c.orders.receive(
            order(f"T-{i}", 10_000, T0 + timedelta(days=4), buyer=f"buyer-{i}"),
            f"d-{i}", meta(source="taobao"),
        )  # fmt: skip
    current(c)
    assert rewards(c, a) == [(2, "issued", [])]


@embedded_only
def test_joining_and_inviting_are_refused_outside_the_period_or_with_an_unknown_code(
    container: Container,
) -> None:
    c = container
    publish(c)
    p = people(c, "a", "b")
    with pytest.raises(Gone) as ended:
        join(c, p["a"], at=datetime(2026, 8, 1, tzinfo=UTC))
    assert ended.value.code == "campaign_ended"
    with pytest.raises(Conflict) as early:
        join(c, p["a"], at=datetime(2026, 3, 1, tzinfo=UTC))
    assert early.value.code == "campaign_not_started"
    with pytest.raises(NotFound):
        invite(c, "AAAAAAAAAA", p["b"], T0)
    assert "ParticipantJoined" not in names_in_log(c)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ends_at": "2026-03-01T00:00:00+08:00"}, "ends_at"),
        ({"starts_at": "2026-04-01T00:00:00"}, "starts_at"),
        ({"success": "scan"}, "success"),
        ({"budget": -1}, "budget"),
        ({"tiers": []}, "tiers"),
        ({"tiers": [{"invites": 3, "reward": {"cash": 1}}]}, "tiers[0].reward"),
        ({"tiers": [{"invites": 3, "reward": {"coupon": {"kind": "percent_off", "value": "0.5"}}}]},
         "tiers[0].reward.coupon.cost"),
        ({"tiers": [{"invites": 3, "reward": {"gift": {"sku": "G"}}},
                    {"invites": 3, "reward": {"gift": {"sku": "G", "cost": 1}}}]},
         "tiers[0].reward.gift.cost"),
        ({"fraud": {"device_burst": 1}}, "fraud.device_burst"),
        ({"bonus": 1}, "bonus"),
    ],
)  # fmt: skip
def test_a_bad_campaign_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as bad:
        Rules.parse({**CAMPAIGN, **change})
    assert bad.value.field == field


def use_a_campaign(c: Container) -> None:
    """Every shape of the campaigns read model, for the rebuild-equals-live test: views,
    joins, invitees two levels down, a self-invitation flagged, a reward held and released,
    a coupon issued."""
    publish(c, starts_at="2020-01-01T00:00:00Z", ends_at="2099-01-01T00:00:00Z")
    p = people(c, "fx-a", "fx-b", "fx-c")
    code = join(c, p["fx-a"])
    c.campaigns.record_view(KEY, code, meta=meta())
    invite(c, code, p["fx-a"], datetime.now(UTC))
    code_b = invite(c, code, p["fx-b"], datetime.now(UTC)).code
    invite(c, code_b, p["fx-c"], datetime.now(UTC))
    for n in ("fx-a", "fx-b"):
        contact(c, n, datetime.now(UTC))
    current(c)
    c.campaigns.release(KEY, p["fx-a"], 2, "ok", meta=meta())
