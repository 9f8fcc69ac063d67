"""`scrm customers merge|unmerge`, run as a child process on the embedded default and on
PostgreSQL."""

from __future__ import annotations

from uuid import UUID

from domain.customers.aggregates import Customer
from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.factories import meta
from tests.integration.support import scrm


def two_customers(settings: Settings) -> tuple[str, str]:
    c = bootstrap(settings)
    try:
        return tuple(  # type: ignore[return-value]
            c.customers.add_customer(
                identities=[("openid", openid)], tags=[], owner=None, meta=meta()
            ).id
            for openid in ("oA", "oB")
        )
    finally:
        c.close()


def test_a_merge_and_its_undo_from_the_command_line_say_who_and_why(settings: Settings) -> None:
    a, b = two_customers(settings)

    merged = scrm(settings, "customers", "merge", a, b, "--reason", "同一人", "--by", "li.na")
    again = scrm(settings, "customers", "merge", a, b, "--reason", "again")
    no_reason = scrm(settings, "customers", "merge", a, b)
    undone = scrm(settings, "customers", "unmerge", a, b, "--reason", "两个人", "--by", "wang")

    assert merged.returncode == 0, merged.stderr
    assert f"merged {b} into {a}" in merged.stdout and "position" in merged.stdout
    assert again.returncode == 1 and "already_merged" in again.stderr
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    assert undone.returncode == 0, undone.stderr
    c = bootstrap(settings)
    try:
        events = list(c.customers.repository.event_store.get(UUID(b)))
    finally:
        c.close()
    into, back = events[-2:]
    assert isinstance(into, Customer.MergedInto) and isinstance(back, Customer.MergeUndone)
    assert (into.reason, into.meta.actor, into.meta.source) == ("同一人", "user:li.na", "cli")
    assert (back.reason, back.meta.actor) == ("两个人", "user:wang")
