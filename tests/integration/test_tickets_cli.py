"""`scrm tickets ...`, run as a child process on the embedded default and on PostgreSQL: the
shipped library installs once, a ticket opens matched and assigned, the board shows it, and an
overdue one is breached once however often the check runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from infra.bootstrap import bootstrap
from infra.settings import Settings
from infra.tickets import breach_overdue_tickets
from projections.follower import StoreFollower
from tests.factories import meta
from tests.integration.support import scrm


def test_tickets_from_the_command_line(settings: Settings) -> None:
    installed = scrm(settings, "tickets", "install-library", "--by", "ops")
    again = scrm(settings, "tickets", "install-library")
    assert installed.returncode == 0, installed.stderr
    assert "workflow installation: defined, version 1" in installed.stdout
    assert "template smart_lock_installation: version 1" in installed.stdout
    assert "already defined" in again.stdout
    templates = [line for line in again.stdout.splitlines() if line.startswith("template")]
    assert len(templates) == 9 and all(line.endswith("unchanged") for line in templates)

    c = bootstrap(settings)
    try:
        c.customers.register_staff(
            staff_id="fitter", name="李师傅", department="service", region="杭州", meta=meta()
        )
        c.tickets.set_worker_profile(
            "fitter",
            regions=["杭州"],
            service_types=["installation"],
            skills=[],
            capacity=None,
            meta=meta(),
        )
    finally:
        c.close()

    opened = scrm(
        settings,
        "tickets",
        "open",
        "--workflow",
        "installation",
        "--service-type",
        "installation",
        "--region",
        "浙江省杭州市",
        "--description",
        "智能锁到货，约师傅上门安装",
        "--product",
        "德施曼 Q5 智能锁",
        "--urgency",
        "urgent",
    )
    assert opened.returncode == 0, opened.stderr
    assert "assigned to fitter" in opened.stdout
    assert "template smart_lock_installation" in opened.stdout
    ticket_id = opened.stdout.split()[1].rstrip(":")

    refused = scrm(
        settings,
        "tickets",
        "open",
        "--workflow",
        "installation",
        "--service-type",
        "repair",
        "--region",
        "杭州",
        "--description",
        "x",
    )
    assert refused.returncode == 1 and "service_type" in refused.stderr

    board = scrm(settings, "tickets", "board", "--open")
    assert board.returncode == 0 and ticket_id in board.stdout and "assigned" in board.stdout

    # Three days later the ticket is overdue: breached once, however often the check runs.
    c = bootstrap(settings)
    try:
        if c.in_process_projections:
            StoreFollower(c.engine, c.read_log).catch_up()
        later = datetime.now(UTC) + timedelta(days=3)
        assert breach_overdue_tickets(c, later) == [ticket_id]
        assert c.tickets.get_ticket(UUID(ticket_id)).breached == (2,)
    finally:
        c.close()
    check = scrm(settings, "tickets", "sla-check")
    assert check.returncode == 0 and "breached 0" in check.stdout
