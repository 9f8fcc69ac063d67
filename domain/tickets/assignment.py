"""Who gets a ticket: the eligible workers (staff or installers) by region, service type and
skill, then the workflow's policy — round robin (the one assigned longest ago) or least open
tickets (ties to the one assigned longest ago, then by id, so the choice is reproducible).

The roster is read from a read model and handed in; the decision and what it was made from
are recorded with the assignment, so an auditor sees why this person got this job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    staff_id: str
    open_tickets: int
    last_assigned: int  # position of their latest assignment, 0 if never
    capacity: int | None = None  # most open tickets at once; None = no limit


@dataclass(frozen=True)
class Choice:
    staff_id: str
    how: str
    reason: str


def choose(policy: str, candidates: Sequence[Candidate]) -> Choice | None:
    free = [c for c in candidates if c.capacity is None or c.open_tickets < c.capacity]
    if not free:
        return None
    if policy == "round_robin":
        pick = min(free, key=lambda c: (c.last_assigned, c.staff_id))
        reason = f"round robin over {len(free)} eligible"
    else:
        pick = min(free, key=lambda c: (c.open_tickets, c.last_assigned, c.staff_id))
        reason = f"fewest open tickets ({pick.open_tickets}) of {len(free)} eligible"
    return Choice(pick.staff_id, policy, reason)
