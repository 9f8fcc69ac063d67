"""JSON on the wire through orjson (datetimes as RFC 3339 UTC with Z)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from infra.events import dumps


class OrjsonResponse(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)
