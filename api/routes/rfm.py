"""The RFM model: the bands that score customers' recency, frequency and monetary value on
their portraits (and in segment rules). Admins publish versions; everyone may read them."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from pydantic import Field

from api.deps import CommandMeta, ContainerDep, CurrentScope, ReaderScope, ReadYourWrites
from api.schemas.customers import Strict
from domain.customers.rfm import DEFAULT_BANDS, publish_rfm_model
from domain.shared import Forbidden
from projections.customers.purchases import rfm_model_in_force, rfm_versions

router = APIRouter(prefix="/v1", tags=["portraits"])


class RfmModelChange(Strict):
    # {"recency_days": [4 ascending days], "frequency": [4 ascending counts],
    #  "monetary": [4 ascending fen]}; validated by the domain, which names the band at fault.
    bands: dict[str, object]
    effective_from: datetime | None = None
    # The model version this change was made from (0 before any): a concurrent change is a 409.
    expected_version: int | None = Field(default=None, ge=0)


@router.put("/rfm-model")
def publish(
    body: RfmModelChange, c: ContainerDep, scope: CurrentScope, meta: CommandMeta
) -> object:
    if scope.role != "admin":
        raise Forbidden("only an admin can change the RFM model")
    version, position = publish_rfm_model(
        c.customers,
        bands=body.bands,
        effective_from=body.effective_from or datetime.now(UTC),
        expected_version=body.expected_version,
        meta=meta,
    )
    return {"model_version": version, "position": position}


@router.get("/rfm-model", dependencies=[ReadYourWrites])
def model(c: ContainerDep, scope: ReaderScope) -> object:
    version, bands = rfm_model_in_force(c.read_db, datetime.now(UTC))
    return {
        "in_force": {"model_version": version, "bands": bands.as_dict()},
        "default": DEFAULT_BANDS.as_dict(),
        "versions": rfm_versions(c.read_db),
    }
