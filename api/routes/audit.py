"""Auditors' questions of the log: one aggregate's history, its state as it was (by version or
by time) with a diff between versions, and everything one request or callback caused. For the
auditor and admin roles; events are shown as stored, personal data sealed, unless the reader
asks for it in clear (`reveal=true`) and says why (`purpose`): that read is recorded in the
archive access log, like any archive read. The logic is infra/audit.py's, shared with the CLI."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CommandMeta, ContainerDep, CurrentScope, ReadYourWrites
from api.responses import OrjsonResponse
from domain.scope import Scope
from domain.shared import Forbidden, Meta
from infra import audit, integrity
from infra.signing import public_pem

router = APIRouter(prefix="/v1/audit", tags=["audit"])

RevealFlag = Annotated[
    bool,
    Query(description="personal data in clear (auditors and admins; needs `purpose`, recorded)"),
]
Purpose = Annotated[
    str | None,
    Query(description="why personal data is read in clear, 4-200 characters; it is recorded"),
]


def _auditor(scope: Scope) -> None:
    if scope.role not in audit.CLEARED_ROLES:
        raise Forbidden("the audit trail is for auditors and admins")


def _reveal(scope: Scope, reveal: bool, purpose: str | None, meta: Meta) -> audit.Reveal | None:
    _auditor(scope)
    return audit.reveal_request(
        reveal=reveal, purpose=purpose, reader=scope.actor, role=scope.role, meta=meta
    )


@router.get("/aggregates/{aggregate_id}/history", dependencies=[ReadYourWrites])
def history(
    aggregate_id: str,
    c: ContainerDep,
    scope: CurrentScope,
    meta: CommandMeta,
    reveal: RevealFlag = False,
    purpose: Purpose = None,
) -> object:
    """Every event of one aggregate: business and recorded time, actor, source, correlation
    and causation ids, data."""
    asked = _reveal(scope, reveal, purpose, meta)
    return OrjsonResponse(audit.history_view(c, aggregate_id, asked))


@router.get("/aggregates/{aggregate_id}", dependencies=[ReadYourWrites])
def state(
    aggregate_id: str,
    c: ContainerDep,
    scope: CurrentScope,
    meta: CommandMeta,
    version: Annotated[int | None, Query(ge=1)] = None,
    as_of: datetime | None = None,
    diff_from: Annotated[int | None, Query(ge=1)] = None,
    reveal: RevealFlag = False,
    purpose: Purpose = None,
) -> object:
    """The state after `version`, or as the store held it at `as_of` (recorded time); with
    `diff_from`, what changed since that version."""
    asked = _reveal(scope, reveal, purpose, meta)
    return OrjsonResponse(
        audit.state_view(
            c, aggregate_id, version=version, as_of=as_of, diff_from=diff_from, reveal=asked
        )
    )


@router.get("/correlations/{correlation_id}", dependencies=[ReadYourWrites])
def correlation(
    correlation_id: str,
    c: ContainerDep,
    scope: CurrentScope,
    meta: CommandMeta,
    reveal: RevealFlag = False,
    purpose: Purpose = None,
) -> object:
    """Everything one request or callback caused, across aggregates, in log order."""
    asked = _reveal(scope, reveal, purpose, meta)
    return OrjsonResponse(audit.correlation_view(c, correlation_id, asked))


@router.get("/checkpoints")
def checkpoints(c: ContainerDep, scope: CurrentScope) -> object:
    """The signed checkpoints of the store's seal chain, with the key that verifies them."""
    _auditor(scope)
    assert c.integrity_db is not None and c.signing_keys is not None
    position, size, chain = integrity.head(c.integrity_db)
    return OrjsonResponse(
        {
            "head": {"position": position, "size": size, "chain": chain.hex()},
            "public_key": {
                "algorithm": "Ed25519",
                "fingerprint": c.signing_keys.ed25519_id,
                "pem": public_pem(c.signing_keys.ed25519.public_key()).decode(),
            },
            "checkpoints": [cp.as_dict() for cp in integrity.checkpoints(c.integrity_db)],
        }
    )


@router.post("/verifications")
def verification(c: ContainerDep, scope: CurrentScope) -> object:
    """Verify the whole store now (every record against its seal, the chain, the signed
    checkpoints): the report names the first record tampered with. Takes as long as reading
    the log does."""
    _auditor(scope)
    return OrjsonResponse(c.verify_store().as_dict())
