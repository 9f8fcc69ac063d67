"""Official Account (公众号) callbacks in plain mode: reachable without a token, trusted only
once the signature, the time window and the nonce check out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from api.callbacks import check_replay, envelope, read_body, remember
from api.deps import ContainerDep
from domain.customers.official_account import FAN_EVENTS, FanEvent
from domain.shared import InvalidInput, NotFound
from infra.bootstrap import Container
from infra.wecom.callbacks import MalformedCallback, require, xml_fields
from infra.wecom.crypto import verify_plain

router = APIRouter(prefix="/v1/integrations/wechat-oa", tags=["integrations"])

Signed = Annotated[str, Query(max_length=128)]
SCENE_PREFIX = "qrscene_"


def _verify(c: Container, signature: str, timestamp: str, nonce: str) -> str:
    if not c.settings.oa_token or not c.settings.oa_app_id:
        raise NotFound(
            "the Official Account integration is not configured (SCRM_OA_TOKEN, SCRM_OA_APP_ID)"
        )
    verify_plain(c.settings.oa_token, signature, timestamp, nonce)
    check_replay(c, "wechat_oa", timestamp, nonce)
    return c.settings.oa_app_id


@router.get("/callback", response_class=PlainTextResponse)
def oa_verify_url(
    c: ContainerDep,
    signature: Signed,
    timestamp: Signed,
    nonce: Signed,
    echostr: Annotated[str, Query(max_length=1024)],
) -> str:
    """Server verification: answer the echostr as given."""
    _verify(c, signature, timestamp, nonce)
    return echostr


@router.post("/callback", response_class=PlainTextResponse)
async def oa_callback(
    request: Request, c: ContainerDep, signature: Signed, timestamp: Signed, nonce: Signed
) -> str:
    body = await read_body(request)
    app_id = _verify(c, signature, timestamp, nonce)
    await run_in_threadpool(
        _handle, c, app_id, body.decode("utf-8", "replace"), request.state.correlation_id
    )
    remember(c, "wechat_oa", nonce)
    return "success"


def _handle(c: Container, app_id: str, plaintext: str, correlation_id: str) -> None:
    fields = xml_fields(plaintext)
    meta, hashed = envelope(fields, plaintext, "wechat_oa", correlation_id)
    event = fields.get("Event", "")
    if fields.get("MsgType") != "event" or event not in FAN_EVENTS:
        kind = f"{fields.get('MsgType', '?')}:{event or '?'}"
        c.customers.receive_only("wechat_oa", hashed, kind[:100], meta)
        return
    openid = require(fields, "FromUserName")
    key = fields.get("EventKey", "")
    scene = key.removeprefix(SCENE_PREFIX) if event == "subscribe" else key
    try:
        fan = FanEvent(
            event=event,
            app_id=app_id,
            openid=openid,
            digest=hashed,
            scene=scene or None,
            unionid=c.fan_directory.unionid_of(app_id, openid),
        )
    except InvalidInput as exc:
        raise MalformedCallback(exc.detail, exc.field) from None
    c.customers.apply_fan_event(fan, meta)
