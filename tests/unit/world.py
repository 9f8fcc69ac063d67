"""Story helpers for the unit layer: hire staff, print a code, scan it, project the log.

Plain functions over the real application, so a test reads as a few sentences.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from domain.customers.aggregates import ChannelCode
from domain.customers.application import CustomersApp, ScanResult
from domain.scope import Scope
from infra.bootstrap import Container
from projections.follower import StoreFollower
from tests.factories import meta

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)  # business time of the stories that need a calendar

# The `container` fixture runs a test on SQLite and again on PostgreSQL. Where the behaviour
# under test cannot differ between stores, the embedded default alone keeps the layer fast.
embedded_only = pytest.mark.parametrize("settings", ["sqlite"], indirect=True)


def hire(app: CustomersApp, *staff_ids: str, department: str = "east") -> None:
    for staff_id in staff_ids:
        app.register_staff(
            staff_id=staff_id,
            name=f"员工 {staff_id}",
            department=department,
            region="shanghai",
            meta=meta(actor="user:admin", at=T0 - timedelta(days=30)),
        )


def print_code(
    app: CustomersApp,
    pool: list[str],
    *,
    tags: list[str] | None = None,
    expires_at: datetime | None = None,
    max_scans: int | None = None,
    at: datetime | None = None,
) -> UUID:
    recorded = app.create_channel_code(
        name="spring fair",
        staff_pool=pool,
        tags=tags or [],
        welcome_message="欢迎",
        expires_at=expires_at,
        max_scans=max_scans,
        meta=meta(actor="user:admin", at=at or T0 - timedelta(days=1)),
    )
    return UUID(recorded.id)


def scan(
    app: CustomersApp, code_id: UUID, visitor: str, *, at: datetime | None = None, **more: str
) -> ScanResult:
    return app.scan_channel_code(
        code_id,
        identities={"wecom_external_userid": visitor, **more},
        device=f"device-{visitor}",
        ip="10.0.0.1",
        meta=meta(actor="integration:wecom", source="wecom", at=at or T0),
    )


def code_of(app: CustomersApp, code_id: UUID) -> ChannelCode:
    return app.load(ChannelCode, code_id, "channel code")


def names_in_log(container: Container, after: int = 0) -> list[str]:
    return [r.name for r in container.read_log(after, 10_000)]


def project(container: Container) -> int:
    """Bring every read model up to the head, in this thread (no background follower)."""
    return StoreFollower(container.engine, container.read_log).catch_up()


def dump(container: Container, name: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of one read model, in a stable order."""
    projection = container.engine.projections[name]
    out = {}
    for table in projection.tables:
        rows = [tuple(row) for row in container.read_db.query(f"SELECT * FROM {table}")]
        out[table] = sorted(rows, key=lambda row: tuple(map(repr, row)))
    return out


class World:
    """A small, fixed history: three staff in two departments, two codes, five customers.

    - east: a, b; west: w. Code `spring` (pool a, b; tag spring), code `west` (pool w).
    - Visitors v1, v2, v3 scan `spring` (to a, b, a), v4 scans `west` (to w), v1 comes back.
    - c5 is added by hand with a phone, owned by b and tagged vip.
    - c1 then gets vip and loses spring.
    """

    def __init__(self, app: CustomersApp):
        hire(app, "a", "b", department="east")
        hire(app, "w", department="west")
        self.spring = print_code(app, ["a", "b"], tags=["spring"])
        self.west = print_code(app, ["w"], tags=["west"])
        self.c1 = UUID(scan(app, self.spring, "v1", at=T0).customer_id)
        self.c2 = UUID(scan(app, self.spring, "v2", at=T0 + timedelta(minutes=1)).customer_id)
        self.c3 = UUID(scan(app, self.spring, "v3", at=T0 + timedelta(minutes=2)).customer_id)
        self.c4 = UUID(scan(app, self.west, "v4", at=T0 + timedelta(minutes=3)).customer_id)
        scan(app, self.spring, "v1", at=T0 + timedelta(hours=1))
        self.c5 = UUID(
            app.add_customer(
                identities=[("phone", "13812345678"), ("openid", "o-5")],
                tags=["vip"],
                owner="b",
                meta=meta(actor="staff:b", at=T0 + timedelta(hours=2)),
            ).id
        )
        self.retagged_at = T0 + timedelta(hours=3)
        app.change_tags(
            self.c1,
            add=["vip"],
            remove=["spring"],
            expected_version=1,
            scope=Scope("staff", staff_id="a"),
            meta=meta(actor="staff:a", at=self.retagged_at),
        )
