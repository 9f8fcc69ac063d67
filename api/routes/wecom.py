"""WeCom (企业微信) callbacks: reachable without a token, trusted only once verified."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from api.callbacks import check_replay, envelope, read_body, remember
from api.deps import ContainerDep
from domain.customers.wecom import CONTACT_CHANGES, ContactChange
from domain.shared import InvalidInput, NotFound
from infra.bootstrap import Container
from infra.wecom.callbacks import MalformedCallback, require, xml_fields
from infra.wecom.crypto import WecomCrypto

router = APIRouter(prefix="/v1/integrations/wecom", tags=["integrations"])

Signed = Annotated[str, Query(max_length=128)]


def _wecom(c: Container) -> WecomCrypto:
    if c.wecom is None:
        raise NotFound(
            "the WeCom integration is not configured (SCRM_WECOM_TOKEN, "
            "SCRM_WECOM_AES_KEY, SCRM_WECOM_CORP_ID)"
        )
    return c.wecom


def _open(c: Container, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """Signature first (cheap, and nothing is looked at before it), then the window and the
    nonce, then decryption and the corp id."""
    crypto = _wecom(c)
    crypto.verify(msg_signature, timestamp, nonce, encrypted)
    check_replay(c, "wecom", timestamp, nonce)
    return crypto.decrypt(encrypted)


@router.get("/callback", response_class=PlainTextResponse)
def wecom_verify_url(
    c: ContainerDep,
    msg_signature: Signed,
    timestamp: Signed,
    nonce: Signed,
    echostr: Annotated[str, Query(max_length=1024)],
) -> str:
    """URL verification: answer the decrypted echostr."""
    return _open(c, msg_signature, timestamp, nonce, echostr)


@router.post("/callback", response_class=PlainTextResponse)
async def wecom_callback(
    request: Request, c: ContainerDep, msg_signature: Signed, timestamp: Signed, nonce: Signed
) -> str:
    encrypted = require(xml_fields(await read_body(request)), "Encrypt")
    plaintext = _open(c, msg_signature, timestamp, nonce, encrypted)
    await run_in_threadpool(_handle, c, plaintext, request.state.correlation_id)
    remember(c, "wecom", nonce)
    return "success"  # WeCom's answer for an event that needs no passive reply


def _handle(c: Container, plaintext: str, correlation_id: str) -> None:
    fields = xml_fields(plaintext)
    meta, hashed = envelope(fields, plaintext, "wecom", correlation_id)
    event, change = fields.get("Event", ""), fields.get("ChangeType", "")
    if event == "change_external_contact" and change in CONTACT_CHANGES:
        try:
            contact = ContactChange(
                change_type=change,
                staff_id=require(fields, "UserID"),
                external_userid=require(fields, "ExternalUserID"),
                digest=hashed,
                state=fields.get("State") or None,
                welcome_code=fields.get("WelcomeCode") or None,
                fail_reason=fields.get("FailReason") or None,
            )
        except InvalidInput as exc:
            raise MalformedCallback(exc.detail, exc.field) from None
        c.customers.apply_contact_change(contact, meta)
    else:
        kind = f"{fields.get('MsgType', '?')}:{event or '?'}:{change or '?'}"
        c.customers.receive_only("wecom", hashed, kind[:100], meta)
