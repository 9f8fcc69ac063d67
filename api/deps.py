"""Annotated dependencies: the container, the caller's scope, the envelope, read-your-writes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import uuid4

from fastapi import Depends, Header, HTTPException, Query, Request

from domain.customers.application import CustomersApp
from domain.scope import Scope
from domain.shared import Forbidden, Meta
from infra.bootstrap import Container
from infra.db import Database
from infra.tokens import InvalidToken


def _container(request: Request) -> Container:
    return request.app.state.container  # type: ignore[no-any-return]


ContainerDep = Annotated[Container, Depends(_container)]


def _customers(c: ContainerDep) -> CustomersApp:
    return c.customers


def _read_db(c: ContainerDep) -> Database:
    return c.read_db


CustomersAppDep = Annotated[CustomersApp, Depends(_customers)]
ReadDb = Annotated[Database, Depends(_read_db)]


def _scope(c: ContainerDep, authorization: Annotated[str | None, Header()] = None) -> Scope:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise HTTPException(
            401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    try:
        claims = c.tokens.verify(authorization[7:].strip())
    except InvalidToken as exc:
        raise HTTPException(
            401, f"invalid token: {exc}", headers={"WWW-Authenticate": "Bearer"}
        ) from None
    return Scope(
        role=claims.role,
        staff_id=claims.staff_id,
        department=claims.department,
        subject=claims.subject,
    )


CurrentScope = Annotated[Scope, Depends(_scope)]


def _writer(scope: CurrentScope) -> Scope:
    if not scope.can_write():
        raise Forbidden(f"the {scope.role} role cannot change anything")
    return scope


def _reader(scope: CurrentScope) -> Scope:
    if scope.role == "regulator":
        raise Forbidden("regulators receive exports only")
    return scope


def _admin_or_manager(scope: CurrentScope) -> Scope:
    if scope.role not in ("admin", "manager"):
        raise Forbidden("only admins and managers can do this")
    return scope


WriterScope = Annotated[Scope, Depends(_writer)]
ReaderScope = Annotated[Scope, Depends(_reader)]
ManagerScope = Annotated[Scope, Depends(_admin_or_manager)]


def _meta(
    request: Request,
    scope: CurrentScope,
    x_correlation_id: Annotated[str | None, Header(max_length=100)] = None,
) -> Meta:
    # The header is validated here (a 422 names it); the middleware already chose the id.
    correlation = x_correlation_id or request.state.correlation_id
    return Meta(
        occurred_at=datetime.now(UTC),
        actor=scope.actor,
        source="api",
        correlation_id=correlation,
        causation_id=f"cmd:{request.method} {request.url.path}:{uuid4()}",
    )


CommandMeta = Annotated[Meta, Depends(_meta)]


def _read_your_writes(
    c: ContainerDep,
    _: ReaderScope,  # authenticate and authorise first: refused callers never wait
    min_position: Annotated[int | None, Query(ge=0)] = None,
    x_min_position: Annotated[int | None, Header(ge=0)] = None,
) -> None:
    _wait(c, min_position, x_min_position)


def _exports_read_your_writes(
    c: ContainerDep,
    _: CurrentScope,  # regulators too: the exports are theirs
    min_position: Annotated[int | None, Query(ge=0)] = None,
    x_min_position: Annotated[int | None, Header(ge=0)] = None,
) -> None:
    _wait(c, min_position, x_min_position)


def _wait(c: Container, min_position: int | None, x_min_position: int | None) -> None:
    wanted = max(min_position or 0, x_min_position or 0)
    if wanted:
        c.engine.wait_for(wanted, c.settings.min_position_timeout)


ReadYourWrites = Depends(_read_your_writes)
ExportsReadYourWrites = Depends(_exports_read_your_writes)


def if_match(if_match: Annotated[str | None, Header()] = None) -> int | None:
    """`If-Match: 3` (or `"3"`) states the version the client saw."""
    if if_match is None:
        return None
    try:
        return int(if_match.strip().strip('"').removeprefix("W/").strip('"'))
    except ValueError:
        from domain.shared import InvalidInput

        raise InvalidInput(
            "If-Match must be an aggregate version number", field="If-Match"
        ) from None


IfMatch = Annotated[int | None, Depends(if_match)]
