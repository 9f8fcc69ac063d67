"""End-to-end API fixtures: the real app over a real Container, in-process follower running.

Every test here runs twice through the `settings` fixture of tests/conftest.py: on the embedded
default (SQLite files under a temporary dir) and on a fresh PostgreSQL database (marked
integration). Nothing is mocked: requests go through FastAPI, the domain, the event store and
the projections, and queries read the read models the follower keeps current.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from infra.bootstrap import Container, bootstrap
from infra.settings import Settings
from tests.factories import ApiClient

PHONE = "13812345678"
MASKED_PHONE = "138****5678"


@dataclass
class Api:
    """One running app: the HTTP client, its container and an admin client."""

    client: TestClient
    container: Container
    admin: ApiClient

    def token(self, role: str, **claims: Any) -> str:
        return self.container.tokens.create(role, **claims)

    def as_role(self, role: str, **claims: Any) -> ApiClient:
        return ApiClient(self.client, self.token(role, **claims))

    def as_staff(self, staff_id: str) -> ApiClient:
        return self.as_role("staff", staff_id=staff_id)

    def as_manager(self, department: str) -> ApiClient:
        return self.as_role("manager", department=department)

    def head(self) -> int:
        return self.container.head()

    def settle(self, timeout: float = 10.0) -> None:
        """Wait for the app's own background work to come to rest: every read model at the
        head, and every log process that records from them (the settlement accruer after a
        completed job, the segment evaluator, the message router) past it, the head unchanged
        meanwhile. What they record is theirs, not a later request's."""
        c = self.container
        followers = [p for _, p in c.log_followers()] if c.process_loops else []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            head = c.head()
            if (
                all(p >= head for p in c.engine.positions().values())
                and all(p.marks.get(p.MARK) >= head for p in followers)
                and c.head() == head
            ):
                return
            time.sleep(0.02)
        raise AssertionError("the app's background work did not come to rest")

    @contextlib.contextmanager
    def records_nothing(self) -> Iterator[None]:
        """Asserts the store's head did not move during the block (once the app's own
        background work has come to rest)."""
        self.settle()
        before = self.head()
        yield
        assert self.head() == before, "a refused request recorded events"

    def customer(
        self,
        identities: list[tuple[str, str]] | None = None,
        tags: list[str] | None = None,
        owner: str | None = None,
        client: ApiClient | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "identities": [
                {"kind": k, "value": v} for k, v in (identities or [("openid", "o-default")])
            ],
            "tags": tags or [],
        }
        if owner is not None:
            body["owner"] = owner
        r = (client or self.admin).post("/v1/customers", body)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def portrait(self, customer_id: str, client: ApiClient | None = None) -> Any:
        """The portrait as `client` sees it, after every write so far has been projected."""
        return (client or self.admin).get(
            f"/v1/customers/{customer_id}/portrait", params={"min_position": self.head()}
        )


def assert_error(response: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    """The error shape of CONVENTIONS.md: {error, detail, field?}, JSON, the right status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code, body
    assert isinstance(body["detail"], str) and body["detail"], body
    if field is not None:
        assert body.get("field") == field, body
    return body  # type: ignore[no-any-return]


MakeApi = Callable[..., Api]


@pytest.fixture(scope="session")
def e2e_pg_database(pg_admin_url: str) -> Iterator[str]:
    """One PostgreSQL database for this run of the e2e tests, dropped at the end."""
    name = f"scrm_e2e_{uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        # Test databases need not wait for the disk on every commit (only a crash of the server
        # itself could lose one); the suite runs markedly faster on slow disks.
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    yield f"{pg_admin_url.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(e2e_pg_database: str) -> str:
    """Overrides tests/conftest.py's database per test with an emptied schema per test.

    CREATE DATABASE costs 0.3-1 s here, which would double this suite's time; dropping and
    recreating the `public` schema (event store, read models, key store all live there)
    gives each test the same empty database in a few milliseconds. Tests run one at a time
    in a process, and each process (e.g. an xdist worker) has its own database.
    """
    with psycopg.connect(e2e_pg_database, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return e2e_pg_database


@pytest.fixture
def make_api(settings: Settings) -> Iterator[MakeApi]:
    """Builds the app over `settings` with overrides (e.g. min_position_timeout=0.3)."""
    with contextlib.ExitStack() as stack:

        def make(**overrides: Any) -> Api:
            s = settings.model_copy(update=overrides) if overrides else settings
            container = bootstrap(s)
            stack.callback(container.close)
            client = stack.enter_context(TestClient(create_app(container=container)))
            return Api(client, container, ApiClient(client, container.tokens.create("admin")))

        yield make


@pytest.fixture
def api(make_api: MakeApi) -> Api:
    return make_api()
