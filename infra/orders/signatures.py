"""Order push authentication and envelopes, per platform.

Who signs what (from the platforms' published push docs and their SDKs):

* Douyin 抖店 message push (消息推送): POST, body = a JSON list of messages
  `[{"tag": "100", "msg_id": "...", "data": "<JSON string>"}, ...]`. Headers `app-id` (our
  app key) and `event-sign` = lowercase hex MD5 of `app_key + body + app_secret`, over the raw
  body bytes. We also require `app-id` to equal the configured key. A `sign-method` header
  other than `md5` is refused (we verify only the MD5 scheme).
* Youzan 有赞云 push: POST, body = a JSON object `{"client_id", "id", "kdt_id", "type",
  "status", "msg" (URL-encoded JSON), "test", "mode", "version", ...}`. Header `Event-Sign` =
  lowercase hex MD5 of `client_id + body + client_secret`, over the raw body bytes.
* Taobao, JD and Pinduoduo deliver order changes through their message services (TMC, JOS
  message, PDD message) rather than signed HTTP pushes: a relay we run posts them, and the
  caller must authenticate that relay by its bearer token.

`verify_push(platform, headers, body, settings) -> bool`:
    True   the platform signs, it is configured, and the signature is valid;
    False  the platform does not sign HTTP pushes — the caller MUST require a bearer token;
    raises PushRejected (HTTP 401) when the platform signs and the signature is missing or
           wrong, the app id does not match, or signing is not configured
           (SCRM_DOUYIN_APP_KEY / SCRM_DOUYIN_APP_SECRET, SCRM_YOUZAN_CLIENT_ID /
           SCRM_YOUZAN_CLIENT_SECRET): an unconfigured signing platform refuses every push
           rather than accepting unsigned ones.
Comparisons are constant-time. Rejection reasons name the failed check, never the payload.

`push_messages(platform, body) -> list[dict | DetailWanted]`: each message of a push body, as
the order payload the platform adapter (`domain.orders.platforms.<platform>.parse`) reads, or
as a `DetailWanted` (order id, the status the push announces) when the message carries only
ids; infra/orders/fetchers.py then fetches the detail from the platform's open API.
`order_payloads(platform, body)` is the same without fetching: a `DetailWanted` raises
InvalidInput with code `detail_required` (nothing of the push is recorded).
* Douyin: each message's `data` that is a full order detail (an object holding
  `shop_order_detail`) is one payload. Douyin's trade and after-sale messages carry only ids
  and a status (e.g. tag 100 订单创建: `p_id`, `s_ids`, `shop_id`, `order_status`, ...; tag 206
  退款成功: `p_id`, `s_id`, `aftersale_id`, `refund_amount`, ...): their `p_id` is the
  shop_order_id of `order.orderDetail`, their `order_status` the status announced.
* Youzan: the URL-decoded `msg` is one payload when it holds `full_order_info` (the trade
  push carries the same structure as `youzan.trade.get`); the envelope's `kdt_id` is added
  when the payload has none (the adapter's last fallback for the shop). A `msg` with only a
  `tid` (else the envelope's `id`) is the tid of `youzan.trade.get`; the envelope's `status`
  is the status announced. A test push (`"test": true`, sent when the push URL is set up)
  yields no payload.
* Taobao, JD, Pinduoduo (token-authenticated relay): the body is the payload itself — a JSON
  object, or a JSON list of them.
Malformed bodies raise InvalidInput naming the path (`body`, `[2].data`, `msg`, ...).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import orjson

from domain.orders.model import PLATFORMS
from domain.shared import InvalidInput, NotFound
from infra.settings import Settings
from infra.wecom.crypto import CallbackRejected

SIGNING_PLATFORMS = ("douyin", "youzan")
DETAIL_REQUIRED = "detail_required"


class PushRejected(CallbackRejected):
    """A push we must not act on (HTTP 401, nothing recorded). A CallbackRejected, so the API's
    existing handler maps it to 401. `detail` names the failed check, never the payload."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def md5_signature(key: str, body: bytes, secret: str) -> str:
    """Lowercase hex MD5 of key + body + secret: the Douyin and Youzan push signature."""
    return hashlib.md5(key.encode() + body + secret.encode()).hexdigest()


def _same(expected: str, received: str) -> bool:
    return hmac.compare_digest(expected.encode(), received.strip().lower().encode())


def _verify_douyin(headers: Mapping[str, str], body: bytes, settings: Settings) -> None:
    key, secret = settings.douyin_app_key, settings.douyin_app_secret
    if not key or not secret:
        raise PushRejected(
            "douyin push signing is not configured (SCRM_DOUYIN_APP_KEY, SCRM_DOUYIN_APP_SECRET)"
        )
    method = _header(headers, "sign-method")
    if method and method.strip().lower() != "md5":
        raise PushRejected("unsupported sign-method; only md5 is verified")
    app_id = _header(headers, "app-id")
    if not app_id or not hmac.compare_digest(app_id.strip().encode(), key.encode()):
        raise PushRejected("app-id header missing or not our app key")
    sign = _header(headers, "event-sign")
    if not sign:
        raise PushRejected("event-sign header missing")
    if not _same(md5_signature(key, body, secret), sign):
        raise PushRejected("signature mismatch")


def _verify_youzan(headers: Mapping[str, str], body: bytes, settings: Settings) -> None:
    client_id, secret = settings.youzan_client_id, settings.youzan_client_secret
    if not client_id or not secret:
        raise PushRejected(
            "youzan push signing is not configured "
            "(SCRM_YOUZAN_CLIENT_ID, SCRM_YOUZAN_CLIENT_SECRET)"
        )
    sign = _header(headers, "event-sign")
    if not sign:
        raise PushRejected("Event-Sign header missing")
    if not _same(md5_signature(client_id, body, secret), sign):
        raise PushRejected("signature mismatch")


def verify_push(platform: str, headers: Mapping[str, str], body: bytes, settings: Settings) -> bool:
    """True: signed and valid. False: this platform does not sign (require a bearer token).
    Raises PushRejected for a bad, missing or unverifiable signature."""
    if platform not in PLATFORMS:
        raise NotFound(f"unknown platform {platform!r}; one of {', '.join(PLATFORMS)}")
    if platform == "douyin":
        _verify_douyin(headers, body, settings)
        return True
    if platform == "youzan":
        _verify_youzan(headers, body, settings)
        return True
    return False


# --- envelopes -----------------------------------------------------------------------------


def _json(raw: bytes | str, field: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidInput(f"{field} is not valid JSON", field=field) from None


def _detail_required(detail: str, field: str) -> InvalidInput:
    return InvalidInput(detail, field=field, code=DETAIL_REQUIRED)


@dataclass(frozen=True)
class DetailWanted:
    """An id-only push message: the platform expects its receiver to fetch this order's
    detail from its open API (infra/orders/fetchers.py)."""

    order_id: str
    field: str  # the message's path in the body, for errors
    status: str | None  # the status the push announces, in the platform's own code
    why: str  # for the detail_required error when fetching is not configured
    shop: Any = None  # Youzan: the envelope's kdt_id, the adapter's last fallback for the shop


Message = dict[str, Any] | DetailWanted


def _order_id(value: Any, field: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise InvalidInput(f"{field} is required in a message that carries no detail", field=field)


def _status(value: Any) -> str | None:
    return None if value in (None, "") or isinstance(value, bool) else str(value)


def _douyin_messages(body: bytes) -> list[Message]:
    messages = _json(body, "body")
    if not isinstance(messages, list):
        raise InvalidInput("a douyin push body is a JSON list of messages", field="body")
    out: list[Message] = []
    for index, message in enumerate(messages):
        path = f"[{index}]"
        if not isinstance(message, Mapping):
            raise InvalidInput(f"{path} must be an object", field=path)
        data = message.get("data")
        if isinstance(data, str):
            data = _json(data, f"{path}.data")
        if not isinstance(data, Mapping):
            raise InvalidInput(f"{path}.data must be a JSON object", field=f"{path}.data")
        if isinstance(data.get("shop_order_detail"), Mapping):
            out.append(dict(data))
            continue
        tag = message.get("tag")
        out.append(
            DetailWanted(
                order_id=_order_id(data.get("p_id"), f"{path}.data.p_id"),
                field=f"{path}.data",
                status=_status(data.get("order_status")),
                why=f"douyin message tag {tag!r} carries only ids and a status; fetch "
                f"order.orderDetail for its p_id and post the detail",
            )
        )
    return out


def _youzan_messages(body: bytes) -> list[Message]:
    envelope = _json(body, "body")
    if not isinstance(envelope, Mapping):
        raise InvalidInput("a youzan push body is a JSON object", field="body")
    if envelope.get("test") is True:
        return []
    raw = envelope.get("msg")
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput("msg is required", field="msg")
    msg = _json(unquote_plus(raw), "msg")
    if not isinstance(msg, Mapping):
        raise InvalidInput("msg must decode to a JSON object", field="msg")
    kdt_id = envelope.get("kdt_id")
    if not isinstance(msg.get("full_order_info"), Mapping):
        # trade messages name the trade in msg.tid; the envelope's id is the same tid
        return [
            DetailWanted(
                order_id=_order_id(msg.get("tid") or envelope.get("id"), "msg.tid"),
                field="msg",
                status=_status(envelope.get("status") or msg.get("status")),
                why=f"youzan message type {envelope.get('type')!r} carries no full_order_info; "
                f"fetch youzan.trade.get for its tid and post the trade",
                shop=kdt_id,
            )
        ]
    payload = dict(msg)
    if "kdt_id" not in payload and kdt_id not in (None, ""):
        payload["kdt_id"] = kdt_id
    return [payload]


def _plain_payloads(body: bytes) -> list[dict[str, Any]]:
    parsed = _json(body, "body")
    items = parsed if isinstance(parsed, list) else [parsed]
    payloads: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            field = f"[{index}]" if isinstance(parsed, list) else "body"
            raise InvalidInput(f"{field} must be a JSON object", field=field)
        payloads.append(dict(item))
    return payloads


def push_messages(platform: str, body: bytes) -> list[Message]:
    """Each message of a push body: an order payload for `parser_for(platform)`, or, for a
    Douyin or Youzan message that carries only ids, what to fetch (see the module doc)."""
    if platform not in PLATFORMS:
        raise NotFound(f"unknown platform {platform!r}; one of {', '.join(PLATFORMS)}")
    if platform == "douyin":
        return _douyin_messages(body)
    if platform == "youzan":
        return _youzan_messages(body)
    return list(_plain_payloads(body))


def order_payloads(platform: str, body: bytes) -> list[dict[str, Any]]:
    """The order payload(s) in a push body, for `parser_for(platform)`; an id-only message
    raises `detail_required` (the caller fetches nothing)."""
    payloads: list[dict[str, Any]] = []
    for message in push_messages(platform, body):
        if isinstance(message, DetailWanted):
            raise _detail_required(message.why, message.field)
        payloads.append(message)
    return payloads
