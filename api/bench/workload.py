"""The commands the bench issues, the same over HTTP and direct: a scan by a new visitor and a
new customer, alternately, with identities unique to the run, thread and call."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import UUID, uuid4

import httpx

from api.bench.plan import Plan
from domain.shared import Meta

if TYPE_CHECKING:
    from domain.customers.application import CustomersApp


def _meta() -> Meta:
    return Meta(
        occurred_at=datetime.now(UTC),
        actor="system:bench",
        source="bench",
        correlation_id=uuid4().hex,
        causation_id=f"cmd:bench:{uuid4().hex}",
    )


class Workload:
    def __init__(self, tag: str, plan: Plan):
        self.tag = tag
        self.plan = plan
        self.app: CustomersApp | None = None
        self.staff: list[str] = []
        self.codes: dict[str, list[str]] = {}  # phase name -> channel code ids

    def seed(self, app: CustomersApp, phases: list[str]) -> None:
        """Register the staff, and channel codes of their own for each phase."""
        self.app = app
        self.staff = [f"bench.s{i:02d}" for i in range(self.plan.staff)]
        for staff_id in self.staff:
            app.register_staff(
                staff_id=staff_id, name="Bench", department="bench", region="lab", meta=_meta()
            )
        for phase in phases:
            self.codes[phase] = [
                app.create_channel_code(
                    name=f"bench {phase} {n}",
                    staff_pool=[self.staff[(n + k) % len(self.staff)] for k in range(3)],
                    tags=["bench", phase],
                    welcome_message="hello",
                    expires_at=None,
                    max_scans=None,
                    meta=_meta(),
                ).id
                for n in range(self.plan.codes)
            ]

    def visitor(self, phase: int, t: int, i: int) -> str:
        return f"o{self.tag}p{phase}t{t}n{i}"

    def unionid(self, phase: int, t: int, i: int) -> str:
        return f"u{self.tag}p{phase}t{t}n{i}"

    @staticmethod
    def phone(phase: int, t: int, i: int) -> str:
        return f"13{phase}{t:02d}{i:09d}"  # unique within this database

    def code(self, phase_name: str, t: int, i: int) -> str:
        codes = self.codes[phase_name]
        return codes[(t + (i // 2) * self.plan.clients) % len(codes)]

    def owner(self, t: int, i: int) -> str:
        return self.staff[(t + i) % len(self.staff)]

    def direct_command(
        self, phase_name: str, phase: int, t: int, i: int, rich: bool = False
    ) -> int:
        """Alternately a scan by a new visitor and a new customer; returns the position of
        its last event. `rich`: the visitor or customer is known by more identities (5 events
        instead of 3 per command)."""
        app = self.app
        assert app is not None, "seed() first"
        if i % 2 == 0:
            identities = {"openid": self.visitor(phase, t, i)}
            if rich:
                identities["unionid"] = self.unionid(phase, t, i)
                identities["wecom_external_userid"] = "w" + self.visitor(phase, t, i)
            scanned = app.scan_channel_code(
                UUID(self.code(phase_name, t, i)),
                identities=identities,
                device=f"bench-device-{i % 64}",
                ip=f"10.{t}.{(i >> 8) & 255}.{i & 255}",
                meta=_meta(),
            )
            return int(scanned.position or 0)
        pairs = [
            ("unionid", self.unionid(phase, t, i)),
            ("phone", self.phone(phase, t, i)),
        ]
        if rich:
            pairs += [
                ("openid", self.visitor(phase, t, i)),
                ("wecom_external_userid", "w" + self.visitor(phase, t, i)),
            ]
        added = app.add_customer(
            identities=pairs, tags=["bench"], owner=self.owner(t, i), meta=_meta()
        )
        return int(added.position or 0)

    def http_command(self, client: httpx.Client, t: int, i: int) -> tuple[str, str | None]:
        """The same alternation over the API (phase 1); returns (kind, error or None)."""
        if i % 2 == 0:
            kind = "scan"
            r = client.post(
                f"/v1/channel-codes/{self.code('http', t, i)}/scans",
                json={
                    "visitor": {"openid": self.visitor(1, t, i)},
                    "device": f"bench-device-{i % 64}",
                    "ip": f"10.{t}.{(i >> 8) & 255}.{i & 255}",
                },
            )
        else:
            kind = "customer"
            r = client.post(
                "/v1/customers",
                json={
                    "identities": [
                        {"kind": "unionid", "value": self.unionid(1, t, i)},
                        {"kind": "phone", "value": self.phone(1, t, i)},
                    ],
                    "tags": ["bench"],
                    "owner": self.owner(t, i),
                },
            )
        return kind, None if r.status_code == 201 else f"HTTP {r.status_code}"
