from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ReadDb, ReaderScope, ReadYourWrites
from projections.customers.channel_stats import channels_dashboard

router = APIRouter(prefix="/v1/dashboards", tags=["dashboards"])


@router.get("/channels", dependencies=[ReadYourWrites])
def channels(
    db: ReadDb,
    scope: ReaderScope,
    since: Annotated[date | None, Query(alias="from")] = None,
    until: Annotated[date | None, Query(alias="to")] = None,
) -> object:
    """Scans, adds and refusals per code and per day (UTC days)."""
    return channels_dashboard(
        db,
        datetime.now(UTC),
        since.isoformat() if since else None,
        until.isoformat() if until else None,
    )
