"""Bearer tokens: what is issued verifies; anything altered, expired or incomplete does not."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from infra.crypto import derive_key
from infra.tokens import InvalidToken, TokenIssuer

MASTER = secrets.token_bytes(32)


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer(MASTER, ttl_days=30)


def test_a_staff_token_verifies_to_its_claims(issuer: TokenIssuer) -> None:
    token = issuer.create("staff", staff_id="zhang.san")

    claims = issuer.verify(token)

    assert (claims.role, claims.staff_id, claims.department) == ("staff", "zhang.san", None)
    assert claims.subject == "zhang.san"
    assert claims.token_id
    assert issuer.verify(issuer.create("staff", staff_id="zhang.san")).token_id != claims.token_id


def test_a_manager_token_carries_the_department(issuer: TokenIssuer) -> None:
    claims = issuer.verify(issuer.create("manager", department="east", subject="boss"))

    assert (claims.role, claims.department, claims.subject) == ("manager", "east", "boss")


def test_a_token_verifies_after_a_restart_with_the_same_master_key(issuer: TokenIssuer) -> None:
    token = issuer.create("admin")
    assert TokenIssuer(MASTER).verify(token).role == "admin"


def test_a_tampered_token_is_rejected(issuer: TokenIssuer) -> None:
    header, payload, signature = issuer.create("staff", staff_id="zhang.san").split(".")
    forged_payload = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(payload).replace(b'"staff"', b'"admin"', 1)
    ).decode()
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]

    for token in (f"{header}.{forged_payload}.{signature}", f"{header}.{payload}.{flipped}"):
        with pytest.raises(InvalidToken):
            issuer.verify(token)


def test_a_token_from_another_installation_is_rejected(issuer: TokenIssuer) -> None:
    foreign = TokenIssuer(secrets.token_bytes(32)).create("admin")
    with pytest.raises(InvalidToken):
        issuer.verify(foreign)


def test_an_expired_token_is_rejected(issuer: TokenIssuer) -> None:
    token = issuer.create("admin", now=datetime.now(UTC) - timedelta(days=30, minutes=1))
    with pytest.raises(InvalidToken) as expired:
        issuer.verify(token)
    assert "expired" in str(expired.value).lower()


def test_a_token_just_inside_its_lifetime_still_verifies(issuer: TokenIssuer) -> None:
    token = issuer.create("admin", now=datetime.now(UTC) - timedelta(days=29, hours=23))
    assert issuer.verify(token).role == "admin"


@pytest.mark.parametrize(
    ("role", "fields"),
    [("staff", {}), ("manager", {}), ("owner", {}), ("staff", {"department": "east"})],
)
def test_a_token_that_names_no_one_to_act_as_is_not_issued(
    issuer: TokenIssuer, role: str, fields: dict[str, str]
) -> None:
    with pytest.raises(ValueError):
        issuer.create(role, **fields)


def sign(claims: dict[str, object], without: str | None = None) -> str:
    """A token signed with the real key but shaped by hand, as a buggy issuer might."""
    now = datetime.now(UTC)
    body = {"iss": "scrm", "iat": now, "exp": now + timedelta(hours=1), "jti": "t1", **claims}
    body.pop(without or "", None)
    return jwt.encode(body, derive_key(MASTER, "api-tokens"), algorithm="HS256")


def test_a_hand_signed_token_with_complete_claims_verifies(issuer: TokenIssuer) -> None:
    claims = issuer.verify(sign({"role": "staff", "sub": "x", "staff": "li.si"}))
    assert (claims.staff_id, claims.token_id) == ("li.si", "t1")


@pytest.mark.parametrize(
    ("claims", "without"),
    [
        ({"role": "staff", "sub": "x"}, None),  # a staff token without its staff member
        ({"role": "manager", "sub": "x"}, None),  # a manager token without its department
        ({"role": "root", "sub": "x"}, None),  # no such role
        ({"sub": "x"}, None),  # no role at all
        ({"role": "admin", "sub": "x"}, "jti"),  # no token id
        ({"role": "admin", "sub": "x"}, "exp"),  # never expires
        ({"role": "admin", "sub": "x", "iss": "elsewhere"}, None),  # another issuer
    ],
)
def test_a_signed_token_with_incomplete_claims_is_rejected(
    issuer: TokenIssuer, claims: dict[str, object], without: str | None
) -> None:
    with pytest.raises(InvalidToken):
        issuer.verify(sign(claims, without))
