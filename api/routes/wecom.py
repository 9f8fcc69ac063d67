"""WeCom (企业微信) callbacks: reachable without a token, trusted only once verified."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from api.callbacks import check_replay, envelope, read_body, remember
from api.deps import ContainerDep
from domain.customers.corp_tags import TAG_CHANGES
from domain.customers.groups import GROUP_CHANGES
from domain.customers.wecom import CONTACT_CHANGES
from domain.shared import NotFound
from infra.bootstrap import Container
from infra.wecom.callbacks import require, xml_fields
from infra.wecom.changes import contact_change, group_change, tag_change
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
    received_at = datetime.now(UTC)  # a WelcomeCode expires 20 s after the add
    encrypted = require(xml_fields(await read_body(request)), "Encrypt")
    plaintext = _open(c, msg_signature, timestamp, nonce, encrypted)
    await run_in_threadpool(_handle, c, plaintext, request.state.correlation_id, received_at)
    remember(c, "wecom", nonce)
    return "success"  # WeCom's answer for an event that needs no passive reply


def _handle(c: Container, plaintext: str, correlation_id: str, received_at: datetime) -> None:
    fields = xml_fields(plaintext)
    meta, hashed = envelope(fields, plaintext, "wecom", correlation_id)
    event, change = fields.get("Event", ""), fields.get("ChangeType", "")
    if event == "change_external_contact" and change in CONTACT_CHANGES:
        c.customers.apply_contact_change(contact_change(fields, hashed, received_at), meta)
    elif event == "change_external_chat" and change in GROUP_CHANGES:
        group = group_change(fields, plaintext, hashed, c.chat_directory)
        c.customers.apply_group_change(group, meta)
    elif event == "change_external_tag" and change in TAG_CHANGES:
        c.customers.apply_tag_change(tag_change(fields, hashed), meta)
    else:
        kind = f"{fields.get('MsgType', '?')}:{event or '?'}:{change or '?'}"
        c.customers.receive_only("wecom", hashed, kind[:100], meta)
