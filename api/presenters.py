"""Personal data on the way out: unsealed for the cleared, masked for everyone else."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.ports import PersonalDataVault
from domain.scope import Scope
from domain.shared import ERASED
from infra.crypto import TOKEN_PREFIX, mask_phone


def reveal(vault: PersonalDataVault, customer_id: str, value: Any, clear: bool) -> Any:
    if not isinstance(value, str) or not value.startswith(TOKEN_PREFIX):
        return value
    plain = vault.unseal(UUID(customer_id), value)
    if plain is None:
        return ERASED
    if clear:
        return plain
    # A phone keeps its ends (138****5678); anything else sealed (a birthday) shows nothing.
    return mask_phone(plain) if plain.isdigit() else "*" * len(plain)


def _reveal_tree(vault: PersonalDataVault, customer_id: str, node: Any, clear: bool) -> Any:
    if isinstance(node, dict):
        # An identity a merge brought stays sealed under the key of the customer it was
        # recorded for, and says so.
        key = node.get("sealed_for") or customer_id
        return {k: _reveal_tree(vault, key, v, clear) for k, v in node.items()}
    if isinstance(node, list):
        return [_reveal_tree(vault, customer_id, v, clear) for v in node]
    return reveal(vault, customer_id, node, clear)


def present_portrait(
    portrait: dict[str, Any], scope: Scope, vault: PersonalDataVault
) -> dict[str, Any]:
    clear = scope.can_see_clear_personal_data(portrait["owner"])
    cid = portrait["id"]
    out = dict(portrait)
    out["identities"] = [
        {"kind": i["kind"], "value": reveal(vault, i.get("sealed_for") or cid, i["value"], clear)}
        for i in portrait["identities"]
    ]
    out["timeline"] = [
        {**t, "data": _reveal_tree(vault, cid, t["data"], clear)} for t in portrait["timeline"]
    ]
    out["personal_data"] = "clear" if clear else "masked"
    return out
