"""Bearer tokens: signed (HS256) with a key derived from the master key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import jwt

from domain.scope import ROLES
from infra.crypto import derive_key


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class Claims:
    role: str
    staff_id: str | None
    department: str | None
    subject: str
    token_id: str


class TokenIssuer:
    def __init__(self, master_key: bytes, ttl_days: int = 30):
        self._key = derive_key(master_key, "api-tokens")
        self.ttl = timedelta(days=ttl_days)

    def create(
        self,
        role: str,
        staff_id: str | None = None,
        department: str | None = None,
        subject: str | None = None,
        now: datetime | None = None,
    ) -> str:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if role == "staff" and not staff_id:
            raise ValueError("a staff token needs --staff")
        if role == "manager" and not department:
            raise ValueError("a manager token needs --department")
        now = now or datetime.now(UTC)
        claims = {
            "role": role,
            "sub": subject or staff_id or role,
            "jti": uuid4().hex,
            "iat": now,
            "exp": now + self.ttl,
            "iss": "scrm",
        }
        if staff_id:
            claims["staff"] = staff_id
        if department:
            claims["dept"] = department
        return jwt.encode(claims, self._key, algorithm="HS256")

    def verify(self, token: str) -> Claims:
        try:
            c = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                issuer="scrm",
                options={"require": ["exp", "iat", "role", "sub", "jti"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        if c["role"] not in ROLES:
            raise InvalidToken("unknown role")
        # The same rules as create(): a token that could not have been issued is refused here,
        # not later as an error while building the caller's scope.
        if c["role"] == "staff" and not c.get("staff"):
            raise InvalidToken("a staff token must name its staff member")
        if c["role"] == "manager" and not c.get("dept"):
            raise InvalidToken("a manager token must name its department")
        return Claims(
            role=c["role"],
            staff_id=c.get("staff"),
            department=c.get("dept"),
            subject=c["sub"],
            token_id=c["jti"],
        )
