"""Small builders and an API client for tests that read as short stories."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from fastapi.testclient import TestClient

from domain.shared import Meta

if TYPE_CHECKING:
    from infra.settings import Settings


def meta(actor: str = "staff:tester", at: datetime | None = None, source: str = "api") -> Meta:
    return Meta(
        occurred_at=at or datetime.now(UTC),
        actor=actor,
        source=source,
        correlation_id=str(uuid4()),
        causation_id=f"cmd:test:{uuid4()}",
    )


def erase(settings: Settings, customer: str | UUID) -> None:
    """Erase a customer at once (no legal hold, no retention): their key is destroyed."""
    from domain.customers import privacy
    from infra.bootstrap import bootstrap
    from infra.jobs import last_contact_reader

    c = bootstrap(settings)
    try:
        outcome = privacy.request_erasure(
            c.customers,
            UUID(str(customer)),
            received_via="email",
            now=datetime.now(UTC),
            last_contact=last_contact_reader(c),
            meta=meta(),
        )
        assert outcome.status == "erased", outcome
    finally:
        c.close()


class ApiClient:
    """Wraps TestClient with a bearer token; every call returns the response."""

    def __init__(self, client: TestClient, token: str):
        self.client = client
        self.token = token

    def as_token(self, token: str) -> ApiClient:
        return ApiClient(self.client, token)

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **(extra or {})}

    def post(self, path: str, json: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self.client.post(path, json=json, headers=self._headers(headers))

    def put(self, path: str, json: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self.client.put(path, json=json, headers=self._headers(headers))

    def get(
        self, path: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> Any:
        return self.client.get(path, params=params, headers=self._headers(headers))

    # business helpers -------------------------------------------------------------------

    def staff(
        self, staff_id: str, department: str = "east", name: str = "张三", region: str = "shanghai"
    ) -> Any:
        r = self.post(
            "/v1/staff", {"id": staff_id, "name": name, "department": department, "region": region}
        )
        assert r.status_code == 201, r.text
        return r.json()

    def code(self, pool: list[str], **fields: Any) -> Any:
        body = {"name": "test code", "staff_pool": pool, **fields}
        r = self.post("/v1/channel-codes", body)
        assert r.status_code == 201, r.text
        return r.json()

    def scan(self, code_id: str, **visitor: str) -> Any:
        return self.post(f"/v1/channel-codes/{code_id}/scans", {"visitor": visitor})
