"""One adapter per platform: `parse(payload) -> OrderSnapshot`, pure mapping of the payload
the platform's open API or order push delivers (its own field names and status codes).

Each adapter raises InvalidInput naming the field (as a path into the payload, e.g.
`trade.orders.order[1].num`) for a missing or malformed field, and InvalidInput with code
`unknown_status` for a status it does not know — nothing is recorded then.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from domain.orders.model import PLATFORMS, OrderSnapshot
from domain.shared import NotFound

Parser = Callable[[Mapping[str, Any]], OrderSnapshot]


def parser_for(platform: str) -> Parser:
    if platform not in PLATFORMS:
        raise NotFound(f"unknown platform {platform!r}; one of {', '.join(PLATFORMS)}")
    module = importlib.import_module(f"domain.orders.platforms.{platform}")
    return module.parse  # type: ignore[no-any-return]
