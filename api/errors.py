"""Domain and infrastructure errors → HTTP, in one place. Body: {error, detail, field}."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import OperationalError as StoreOperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from api.responses import OrjsonResponse
from domain.ports import OrderDetailUnavailable
from domain.shared import Conflict, DomainError, Forbidden, Gone, InvalidInput, NotFound, Refused
from infra.db import StoreUnavailable
from infra.wecom.callbacks import MalformedCallback
from infra.wecom.crypto import CallbackRejected
from projections.engine import NotCaughtUp

STATUS: list[tuple[type[DomainError], int]] = [
    (InvalidInput, 422),
    (NotFound, 404),
    (Forbidden, 403),
    (Conflict, 409),
    (Gone, 410),
    (OrderDetailUnavailable, 502),  # a platform's API failed us; the platform retries
]


def error_body(code: str, detail: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"error": code, "detail": detail}
    if field:
        body["field"] = field
    body.update(extra)
    return body


def _domain(_: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, DomainError)
    if isinstance(exc, Refused):
        status = 410 if isinstance(exc.cause, Gone) else 409
        return OrjsonResponse(
            error_body(exc.code, exc.detail, exc.field, position=exc.position), status_code=status
        )
    status = next((s for cls, s in STATUS if isinstance(exc, cls)), 400)
    return OrjsonResponse(
        error_body(exc.code, exc.detail, exc.field, **exc.extra), status_code=status
    )


def _validation(_: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    if first.get("type") == "json_invalid":
        # Its loc is ("body", <character offset>): no field to name, and the offset is not one.
        why = (first.get("ctx") or {}).get("error", "decode error")
        return OrjsonResponse(
            error_body("invalid_input", f"the request body is not valid JSON: {why}"),
            status_code=422,
        )
    if first.get("type") == "missing" and tuple(first.get("loc", ())) == ("body",):
        return OrjsonResponse(
            error_body("invalid_input", "a JSON object body is required"), status_code=422
        )
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    field = ".".join(loc) or None
    detail = f"{field}: {first.get('msg')}" if field else str(first.get("msg"))
    return OrjsonResponse(error_body("invalid_input", detail, field), status_code=422)


def _http(_: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, HTTPException)
    codes = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
    detail = exc.detail if isinstance(exc.detail, str) else "request refused"
    return OrjsonResponse(
        error_body(codes.get(exc.status_code, "error"), detail),
        status_code=exc.status_code,
        headers=exc.headers,
    )


def _lagging(_: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, NotCaughtUp)
    lag = {name: max(exc.wanted - pos, 0) for name, pos in exc.positions.items()}
    return OrjsonResponse(
        error_body(
            "not_caught_up", str(exc), min_position=exc.wanted, positions=exc.positions, lag=lag
        ),
        status_code=503,
        headers={"Retry-After": "1"},
    )


def _unavailable(_: Request, exc: Exception) -> OrjsonResponse:
    return OrjsonResponse(
        error_body("store_unavailable", "a store is unreachable, try again"),
        status_code=503,
        headers={"Retry-After": "2"},
    )


def _callback_rejected(_: Request, exc: Exception) -> OrjsonResponse:
    # The reason names the failed check, never the payload.
    return OrjsonResponse(
        error_body("invalid_callback", f"callback refused: {exc}"), status_code=401
    )


def _callback_malformed(_: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, MalformedCallback)
    return OrjsonResponse(
        error_body("invalid_callback_body", exc.detail, exc.field), status_code=422
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(NotCaughtUp, _lagging)
    app.add_exception_handler(StoreUnavailable, _unavailable)
    app.add_exception_handler(StoreOperationalError, _unavailable)
    app.add_exception_handler(CallbackRejected, _callback_rejected)
    app.add_exception_handler(MalformedCallback, _callback_malformed)
