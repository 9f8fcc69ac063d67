"""Archive exports for regulators (infra/exports.py, docs/exports.md). A regulator (or an
admin) asks for a scope; scrm writes the signed export, records who asked for what and the
digest produced, and serves the tarball. Auditors see the list of exports made."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.deps import CommandMeta, ContainerDep, CurrentScope, ExportsReadYourWrites
from api.responses import OrjsonResponse
from api.schemas.exports import ExportCreate
from domain.audit.exports import export_scope
from domain.scope import Scope
from domain.shared import Forbidden, NotFound
from infra import exports
from infra.bootstrap import Container
from projections.audit import exports as read

router = APIRouter(prefix="/v1/exports", tags=["exports"])

PRODUCERS = ("regulator", "admin")
READERS = ("regulator", "admin", "auditor")


def _allowed(scope: Scope, roles: tuple[str, ...], what: str) -> None:
    if scope.role not in roles:
        raise Forbidden(f"{what} is for the {', '.join(roles)} roles")


def _tarball(c: Container, export_id: str) -> Path:
    return c.settings.data_dir / "exports" / f"scrm-export-{export_id}.tar.gz"


@router.post("", status_code=201)
def create(body: ExportCreate, c: ContainerDep, scope: CurrentScope, meta: CommandMeta) -> object:
    """Produce an export of events whose business time is in [from, to), optionally only
    some customers, staff or contexts. Answers its digest, counts and where to fetch it."""
    _allowed(scope, PRODUCERS, "producing an export")
    checked = export_scope(body.from_, body.to, body.customers, body.staff, body.contexts)
    export_id = exports.new_export_id()
    out = _tarball(c, str(export_id))
    out.parent.mkdir(parents=True, exist_ok=True)
    result = exports.produce(
        c,
        checked,
        out,
        requested_by=scope.actor,
        role=scope.role,
        meta=meta,
        export_id=export_id,
    )
    return OrjsonResponse(
        {**result.as_dict(), "download": f"/v1/exports/{result.export_id}/archive.tar.gz"},
        status_code=201,
    )


@router.get("", dependencies=[ExportsReadYourWrites])
def list_exports(c: ContainerDep, scope: CurrentScope) -> object:
    """Every export made, newest first: who asked, the scope, counts, digests."""
    _allowed(scope, READERS, "the list of exports")
    return OrjsonResponse({"items": read.list_exports(c.read_db)})


@router.get("/{export_id}", dependencies=[ExportsReadYourWrites])
def one(export_id: UUID, c: ContainerDep, scope: CurrentScope) -> object:
    _allowed(scope, READERS, "the list of exports")
    found = read.find_export(c.read_db, str(export_id))
    if found is None:
        raise NotFound(f"export {export_id} not found")
    return OrjsonResponse(found)


@router.get("/{export_id}/archive.tar.gz")
def download(export_id: UUID, c: ContainerDep, scope: CurrentScope) -> object:
    """The export itself (personal data in clear, erased customers redacted)."""
    _allowed(scope, PRODUCERS, "downloading an export")
    path = _tarball(c, str(export_id))
    if not path.is_file():
        raise NotFound(f"export {export_id} is not kept on this server")
    return FileResponse(path, media_type="application/gzip", filename=path.name)
