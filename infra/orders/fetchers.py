"""Order details from the Douyin and Youzan open APIs, for pushes that carry only an order id.

Douyin 抖店 `order.orderDetail` (API 调用指南, 签名算法; the official SDKs agree):
    POST {SCRM_DOUYIN_API_URL}/order/orderDetail
         ?app_key=..&method=order.orderDetail&access_token=..&timestamp=<unix seconds>&v=2
          &sign_method=hmac-sha256&sign=..
    body (Content-Type application/json) = param_json = {"shop_order_id":"<the push's p_id>"}:
    the business parameters with keys sorted at every level, no spaces, non-ASCII and "/" left
    unescaped — the gateway re-serialises them that way to check the sign.
    sign = lowercase hex HMAC-SHA256(key=app_secret, message=app_secret + "app_key" + app_key
           + "method" + method + "param_json" + param_json + "timestamp" + timestamp + "v" + v
           + app_secret); with sign_method md5 (the default when none is sent), the hex MD5 of
           that same message. access_token is not signed.
    Answer: {"code": 10000, "msg": "success", "sub_code", "sub_msg", "log_id",
             "data": {"shop_order_detail": {...}}}. Any other code is an error (平台基础错误码:
    20000 service unavailable, 30001 no permission / the shop's authorization is gone, 30002 IP
    not whitelisted, 40003 invalid parameter — sub_code isv.access-token-expired,
    isv.signature-invalid, ... —, 50002 business failure, 60000 rate limited, ...).

Youzan 有赞云 `youzan.trade.get` 4.0.2:
    POST {SCRM_YOUZAN_API_URL}/api/youzan.trade.get/4.0.2?access_token=..  (the token only in
    the query; Youzan signs nothing else), Content-Type application/json, body {"tid": ".."}.
    Answer, HTTP 200 either way: {"success": true, "code": 200, "message", "trace_id",
    "data": {"full_order_info": {...}, "refund_order": [...], ...}}; a business error is
    {"success": false, "code": 5000, "message": "trade not found", ...} (also when the token's
    shop does not own the trade); a gateway error is {"gw_err_resp": {"err_code": 4201,
    "err_msg": "非法的请求凭证", ...}} (4201-4203 the access token, 4101 rate limited).

What comes back is the answer's `data`, the shape the adapters read already (the same as a
full push's detail, so a full push and a fetched detail of the same content are one message);
a detail of another order than the one asked for is an error. Errors are OrderDetailUnavailable
(HTTP 502, nothing recorded, the platform retries the push) naming the API and its codes; the
platform's message is included with the token and secrets scrubbed. Access tokens (7 days on
both platforms) are configured (SCRM_DOUYIN_ACCESS_TOKEN, SCRM_YOUZAN_ACCESS_TOKEN), not
refreshed here.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import orjson

from domain.orders.model import FORWARD
from domain.orders.platforms import douyin, youzan
from domain.ports import OrderDetailFetcher, OrderDetailUnavailable
from domain.shared import InvalidInput
from infra.orders.signatures import DETAIL_REQUIRED, DetailWanted, Message
from infra.settings import Settings

DOUYIN_METHOD = "order.orderDetail"
DOUYIN_PATH = "/order/orderDetail"
YOUZAN_API = "youzan.trade.get"
YOUZAN_VERSION = "4.0.2"

# What Douyin's platform-level codes mean, and what to do about the usual sub_codes.
DOUYIN_CODES = {
    20000: "service unavailable",
    20001: "service timed out",
    30001: "no permission, or the shop's authorization is gone",
    30002: "this server's IP is not on the app's whitelist",
    40001: "a required parameter is missing",
    40003: "invalid parameter",
    40004: "invalid business parameter",
    50002: "business failure",
    60000: "rate limited",
    70000: "API offline",
}
DOUYIN_HINTS = {
    "isv.access-token-expired": "renew SCRM_DOUYIN_ACCESS_TOKEN",
    "isv.access-token-no-existed": "renew SCRM_DOUYIN_ACCESS_TOKEN",
    "isv.access-token-invalid": "SCRM_DOUYIN_ACCESS_TOKEN is not for SCRM_DOUYIN_APP_KEY",
    "isv.signature-invalid": "check SCRM_DOUYIN_APP_KEY and SCRM_DOUYIN_APP_SECRET",
}
YOUZAN_CODES = {
    4101: "rate limited",
    4201: "invalid access token; renew SCRM_YOUZAN_ACCESS_TOKEN",
    4202: "access token expired; renew SCRM_YOUZAN_ACCESS_TOKEN",
    4203: "access token refused; renew SCRM_YOUZAN_ACCESS_TOKEN",
    5000: "trade not found, or not a trade of the access token's shop",
}


def unreachable(detail: str) -> OrderDetailUnavailable:
    return OrderDetailUnavailable(detail, code="platform_unreachable")


def platform_error(detail: str) -> OrderDetailUnavailable:
    return OrderDetailUnavailable(detail, code="platform_error")


# --- Douyin request signing ------------------------------------------------------------------


def douyin_param_json(params: Mapping[str, Any]) -> str:
    """Business parameters as Douyin signs them: keys sorted at every level, compact, and
    neither non-ASCII nor "/" escaped (orjson escapes neither)."""
    return orjson.dumps(params, option=orjson.OPT_SORT_KEYS).decode()


def douyin_sign(
    app_key: str,
    app_secret: str,
    method: str,
    param_json: str,
    timestamp: str,
    *,
    v: str = "2",
    sign_method: str = "hmac-sha256",
) -> str:
    """The `sign` of a Douyin open API request (see the module doc)."""
    message = (
        f"{app_secret}app_key{app_key}method{method}param_json{param_json}"
        f"timestamp{timestamp}v{v}{app_secret}"
    ).encode()
    if sign_method == "hmac-sha256":
        return hmac.new(app_secret.encode(), message, hashlib.sha256).hexdigest()
    if sign_method == "md5":
        return hashlib.md5(message).hexdigest()
    raise ValueError(f"unknown sign_method {sign_method!r}")


# --- the HTTP clients --------------------------------------------------------------------------


class _Api:
    """One platform API over a shared httpx client: transport failures and non-JSON answers
    become `platform_unreachable`; the platform's own error codes are the subclasses' job."""

    name = ""

    def __init__(self, client: httpx.Client, secrets: Sequence[str]):
        self.client = client
        self._secrets = [s for s in secrets if s]

    def _scrub(self, text: Any) -> str:
        # Platform messages sometimes echo what was sent; never pass a secret on.
        out = str(text or "")[:200]
        for secret in self._secrets:
            out = out.replace(secret, "***")
        return out

    def _post(
        self, url: str, params: dict[str, str], content: bytes, headers: dict[str, str]
    ) -> dict[str, Any]:
        try:
            response = self.client.post(url, params=params, content=content, headers=headers)
        except httpx.TimeoutException:
            raise unreachable(f"{self.name} did not answer in time") from None
        except httpx.HTTPError as exc:  # the message may hold the URL, hence the token
            raise unreachable(f"{self.name} is unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise unreachable(f"{self.name} answered HTTP {response.status_code}")
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise unreachable(f"{self.name} answered something other than JSON") from None
        if not isinstance(body, dict):
            raise unreachable(f"{self.name} answered something other than a JSON object")
        return body


class DouyinOrderApi(_Api):
    name = f"douyin {DOUYIN_METHOD}"

    def __init__(
        self,
        client: httpx.Client,
        base_url: str,
        app_key: str,
        app_secret: str,
        access_token: str,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__(client, [app_secret, access_token])
        self.url = base_url.rstrip("/") + DOUYIN_PATH
        self.app_key, self.app_secret, self.access_token = app_key, app_secret, access_token
        self.clock = clock

    def order_detail(self, shop_order_id: str) -> dict[str, Any]:
        param_json = douyin_param_json({"shop_order_id": shop_order_id})
        timestamp = str(int(self.clock()))
        params = {
            "app_key": self.app_key,
            "method": DOUYIN_METHOD,
            "access_token": self.access_token,
            "timestamp": timestamp,
            "v": "2",
            "sign_method": "hmac-sha256",
            "sign": douyin_sign(
                self.app_key, self.app_secret, DOUYIN_METHOD, param_json, timestamp
            ),
        }
        # the new error codes (the SDKs ask for them the same way)
        headers = {"Content-Type": "application/json", "x-open-no-old-err-code": "1"}
        body = self._post(self.url, params, param_json.encode(), headers)
        if str(body.get("code")) != "10000":
            raise self._error(body)
        data = body.get("data")
        detail = data.get("shop_order_detail") if isinstance(data, dict) else None
        if not isinstance(detail, dict):
            raise platform_error(f"{self.name} answered without data.shop_order_detail")
        if str(detail.get("order_id")) != shop_order_id:
            raise platform_error(f"{self.name} answered with another order than {shop_order_id}")
        return data  # type: ignore[return-value]

    def _error(self, body: dict[str, Any]) -> OrderDetailUnavailable:
        code, sub_code = body.get("code"), str(body.get("sub_code") or "")
        meaning = DOUYIN_CODES.get(code, "error") if isinstance(code, int) else "error"
        said = self._scrub(body.get("sub_msg") or body.get("msg"))
        detail = f"{self.name} failed: {code} {sub_code} ({meaning}): {said}"
        hint = DOUYIN_HINTS.get(sub_code)
        return platform_error(f"{detail}; {hint}" if hint else detail)


class YouzanTradeApi(_Api):
    name = f"youzan {YOUZAN_API} {YOUZAN_VERSION}"

    def __init__(self, client: httpx.Client, base_url: str, access_token: str):
        super().__init__(client, [access_token])
        self.url = f"{base_url.rstrip('/')}/api/{YOUZAN_API}/{YOUZAN_VERSION}"
        self.access_token = access_token

    def trade(self, tid: str) -> dict[str, Any]:
        body = self._post(
            self.url,
            {"access_token": self.access_token},
            orjson.dumps({"tid": tid}),
            {"Content-Type": "application/json"},
        )
        for wrapper, code_key, msg_key in (
            ("gw_err_resp", "err_code", "err_msg"),
            ("error_response", "code", "msg"),  # the older APIs' shape
        ):
            if isinstance(body.get(wrapper), dict):
                raise self._error(body[wrapper].get(code_key), body[wrapper].get(msg_key))
        if body.get("success") is not True or str(body.get("code")) != "200":
            raise self._error(body.get("code"), body.get("message"))
        data = body.get("data")
        full = data.get("full_order_info") if isinstance(data, dict) else None
        info = full.get("order_info") if isinstance(full, dict) else None
        if not isinstance(info, dict):
            raise platform_error(f"{self.name} answered without data.full_order_info.order_info")
        if str(info.get("tid")) != tid:
            raise platform_error(f"{self.name} answered with another trade than {tid}")
        return data  # type: ignore[return-value]

    def _error(self, code: Any, message: Any) -> OrderDetailUnavailable:
        meaning = YOUZAN_CODES.get(code, "error") if isinstance(code, int) else "error"
        return platform_error(f"{self.name} failed: {code} ({meaning}): {self._scrub(message)}")


class PlatformOrderDetails:
    """The deployment's OrderDetailFetcher: Douyin and Youzan over HTTP, as configured."""

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None):
        self.settings = settings
        self._transport = transport
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def missing(self, platform: str) -> list[str]:
        """The settings fetching needs for `platform` that are not set."""
        s = self.settings
        needed = {
            "douyin": {
                "SCRM_DOUYIN_APP_KEY": s.douyin_app_key,
                "SCRM_DOUYIN_APP_SECRET": s.douyin_app_secret,
                "SCRM_DOUYIN_ACCESS_TOKEN": s.douyin_access_token,
            },
            "youzan": {"SCRM_YOUZAN_ACCESS_TOKEN": s.youzan_access_token},
        }.get(platform)
        if needed is None:
            return ["a detail API (there is none for this platform)"]
        return [name for name, value in needed.items() if not value]

    def fetch(self, platform: str, order_id: str) -> dict[str, Any]:
        missing = self.missing(platform)
        if missing:
            raise InvalidInput(
                f"fetching {platform} order details needs {', '.join(missing)}, not set",
                code=DETAIL_REQUIRED,
            )
        s = self.settings
        if platform == "douyin":
            assert s.douyin_app_key and s.douyin_app_secret and s.douyin_access_token
            return DouyinOrderApi(
                self.client(),
                s.douyin_api_url,
                s.douyin_app_key,
                s.douyin_app_secret,
                s.douyin_access_token,
            ).order_detail(order_id)
        assert s.youzan_access_token
        return YouzanTradeApi(self.client(), s.youzan_api_url, s.youzan_access_token).trade(
            order_id
        )

    def client(self) -> httpx.Client:
        # Made on first use (most deployments never fetch), then pooled across pushes.
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=self.settings.order_api_timeout_seconds, transport=self._transport
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


# --- a push's id-only messages -> their details ----------------------------------------------


def fetch_details(
    platform: str, messages: Sequence[Message], fetcher: OrderDetailFetcher | None
) -> list[dict[str, Any]]:
    """Full payloads as they are; each id-only message replaced by the detail its platform's
    API gives now (one call per order per push). The first failure refuses the whole push;
    without a fetcher an id-only message is 422 detail_required."""
    fetched: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, DetailWanted):
            out.append(message)
            continue
        if fetcher is None:
            raise InvalidInput(message.why, field=message.field, code=DETAIL_REQUIRED)
        detail = fetched.get(message.order_id)
        if detail is None:
            try:
                detail = fetcher.fetch(platform, message.order_id)
            except InvalidInput as exc:
                if exc.code != DETAIL_REQUIRED:
                    raise
                raise InvalidInput(
                    f"{message.why}; {exc.detail}", field=message.field, code=DETAIL_REQUIRED
                ) from None
            fetched[message.order_id] = detail
        _require_current(platform, message, detail)
        if platform == "youzan" and "kdt_id" not in detail and message.shop not in (None, ""):
            detail = {**detail, "kdt_id": message.shop}  # as for a full push
        out.append(detail)
    return out


def _current_status(platform: str, detail: Mapping[str, Any]) -> Any:
    try:
        if platform == "douyin":
            return detail["shop_order_detail"]["order_status"]
        return detail["full_order_info"]["order_info"]["status"]
    except (KeyError, TypeError):
        return None  # the adapter will name what is missing


def _mapped(platform: str, raw: Any) -> str | None:
    if raw is None:
        return None
    if platform == "douyin":
        text = str(raw).strip()
        return douyin.STATUS_MAP.get(int(text)) if text.isdigit() else None
    return youzan.STATUS_MAP.get(str(raw))


def _require_current(platform: str, wanted: DetailWanted, detail: Mapping[str, Any]) -> None:
    """Refuse a detail behind the status its push announced: the detail APIs lag their pushes
    (Youzan says by up to 30 s), and acknowledging would lose that status until the next
    push. Refused, the platform retries later."""
    announced = _mapped(platform, wanted.status)
    current = _mapped(platform, _current_status(platform, detail))
    if announced is None or current is None or current == "cancelled":
        return
    behind = announced == "cancelled" or (
        announced in FORWARD and FORWARD.index(current) < FORWARD.index(announced)
    )
    if behind:
        raise OrderDetailUnavailable(
            f"the {platform} push announced {wanted.status} for order {wanted.order_id} but "
            f"the detail API still reports {_current_status(platform, detail)}; retry later",
            code="detail_not_current",
        )
