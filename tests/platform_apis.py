"""A local stand-in for the Douyin and Youzan order detail APIs, because the real ones cannot
be reached from here.

It serves recorded details in the documented answer shapes and checks every request the way
the platforms' gateways do — Douyin: path and method, app_key, v=2, a timestamp within ten
minutes, the sign over the param_json the gateway re-serialises (keys sorted, compact), and the
access token; Youzan: the versioned path, a JSON body, and the access token in the query. The
checks are written here from the platforms' docs, independently of infra/orders/fetchers.py,
so a wrongly signed request is refused (and noted in `refusals`) and its test fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).parent / "fixtures" / "orders"
BEIJING = timezone(timedelta(hours=8))

APP_KEY, APP_SECRET = "7150000000000000001", "douyin-app-secret-0001"
DOUYIN_TOKEN = "douyin-access-token-0001"
YOUZAN_TOKEN = "youzan-access-token-0001"


def recorded(platform: str, name: str) -> dict[str, Any]:
    """A fixture's detail: the `data` of a recorded API answer, or the detail itself."""
    payload: dict[str, Any] = json.loads((FIXTURES / platform / f"{name}.json").read_text())
    data = payload.get("data")
    return data if isinstance(data, dict) else payload


def _douyin_canonical(body: bytes) -> str:
    # What the gateway signs: param_json with keys sorted at every level, compact, unescaped.
    return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def douyin_gateway_sign(secret: str, query: dict[str, str], param_json: str) -> str:
    pattern = (
        secret
        + "app_key"
        + query["app_key"]
        + "method"
        + query["method"]
        + "param_json"
        + param_json
        + "timestamp"
        + query["timestamp"]
        + "v"
        + query["v"]
        + secret
    ).encode("utf-8")
    if query.get("sign_method", "md5") == "hmac-sha256":
        return hmac.new(secret.encode("utf-8"), pattern, hashlib.sha256).hexdigest()
    return hashlib.md5(pattern).hexdigest()


def _fresh(timestamp: str) -> bool:
    """Unix seconds, or the older "yyyy-MM-dd HH:mm:ss" in Beijing time; within 10 minutes."""
    try:
        at = (
            float(timestamp)
            if timestamp.isdigit()
            else datetime.strptime(timestamp, "%Y-%m-%d %H:%M:%S")
            .replace(tzinfo=BEIJING)
            .timestamp()
        )
    except ValueError:
        return False
    return abs(time.time() - at) <= 600


class PlatformApis:
    """The two APIs on one local port. Put details in `douyin_orders` / `youzan_trades`; set
    `douyin_answer` / `youzan_answer` to answer a checked request with that body instead."""

    def __init__(
        self,
        *,
        app_key: str = APP_KEY,
        app_secret: str = APP_SECRET,
        douyin_token: str = DOUYIN_TOKEN,
        youzan_token: str = YOUZAN_TOKEN,
    ):
        self.app_key, self.app_secret = app_key, app_secret
        self.douyin_token, self.youzan_token = douyin_token, youzan_token
        self.douyin_orders: dict[str, dict[str, Any]] = {}  # shop_order_id -> data
        self.youzan_trades: dict[str, dict[str, Any]] = {}  # tid -> data
        self.douyin_answer: dict[str, Any] | None = None
        self.youzan_answer: dict[str, Any] | None = None
        self.requests: list[tuple[str, dict[str, str], bytes]] = []  # path, query, body
        self.refusals: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    # --- recorded details ------------------------------------------------------------------

    def serve_douyin(self, name: str) -> dict[str, Any]:
        data = recorded("douyin", name)
        self.douyin_orders[str(data["shop_order_detail"]["order_id"])] = data
        return data

    def serve_youzan(self, name: str) -> dict[str, Any]:
        data = recorded("youzan", name)
        self.youzan_trades[str(data["full_order_info"]["order_info"]["tid"])] = data
        return data

    # --- the gateways ----------------------------------------------------------------------

    def _refuse_douyin(self, code: int, sub_code: str, why: str) -> dict[str, Any]:
        self.refusals.append(f"douyin {sub_code}: {why}")
        return {"code": code, "msg": "非法的参数", "sub_code": sub_code, "sub_msg": why, "data": {}}

    def douyin(self, path: str, query: dict[str, str], body: bytes) -> dict[str, Any]:
        for name in ("app_key", "method", "timestamp", "v", "sign", "access_token"):
            if not query.get(name):
                return self._refuse_douyin(40001, f"isv.{name}-missing", f"{name} is required")
        if query["app_key"] != self.app_key:
            return self._refuse_douyin(40003, "isv.app-id-invalid", "unknown app_key")
        if query["method"] != "order.orderDetail" or path != "/order/orderDetail":
            return self._refuse_douyin(40003, "isv.method-invalid", "method and path differ")
        if query["v"] != "2":
            return self._refuse_douyin(40003, "isv.version-invalid", "v must be 2")
        if not _fresh(query["timestamp"]):
            return self._refuse_douyin(40003, "isv.timestamp-invalid", "timestamp is off")
        try:
            param_json = _douyin_canonical(body)
        except ValueError:
            return self._refuse_douyin(40003, "isv.parameter-format-invalid", "body is not JSON")
        expected = douyin_gateway_sign(self.app_secret, query, param_json)
        if not hmac.compare_digest(expected, query["sign"]):
            return self._refuse_douyin(40003, "isv.signature-invalid", "签名校验失败")
        if query["access_token"] != self.douyin_token:
            return self._refuse_douyin(40003, "isv.access-token-no-existed", "unknown token")
        order_id = json.loads(body).get("shop_order_id")
        if not isinstance(order_id, str):  # Douyin: every business parameter is a string
            return self._refuse_douyin(40004, "isv.business-failed", "shop_order_id: string")
        if self.douyin_answer is not None:
            return self.douyin_answer
        data = self.douyin_orders.get(order_id)
        if data is None:
            return {
                "code": 50002,
                "msg": "业务处理失败",
                "sub_code": "isv.business-failed:订单不存在",
            }
        return {
            "code": 10000,
            "msg": "success",
            "sub_code": "",
            "sub_msg": "",
            "log_id": "20240301100105010212345678ABCDEF",
            "data": data,
        }

    def _refuse_youzan(self, code: int, why: str) -> dict[str, Any]:
        self.refusals.append(f"youzan {code}: {why}")
        return {"gw_err_resp": {"err_code": code, "err_msg": why, "trace_id": "yz7-0a3e"}}

    def youzan(
        self, path: str, query: dict[str, str], body: bytes, content_type: str
    ) -> dict[str, Any]:
        if path != "/api/youzan.trade.get/4.0.2":
            return self._refuse_youzan(4001, "非法请求地址")
        if not content_type.startswith("application/json"):
            return self._refuse_youzan(4007, "Content-Type must be application/json")
        if query.get("access_token") != self.youzan_token:
            return self._refuse_youzan(4201, "非法的请求凭证")
        try:
            tid = json.loads(body).get("tid")
        except ValueError:
            return self._refuse_youzan(4007, "body is not JSON")
        if self.youzan_answer is not None:
            return self.youzan_answer
        data = self.youzan_trades.get(tid) if isinstance(tid, str) else None
        if data is None:
            return {
                "trace_id": "yz7-0a3e",
                "code": 5000,
                "success": False,
                "message": "trade not found",
                "data": {"delivery_order": [], "refund_order": [], "full_order_info": {}},
            }
        return {
            "success": True,
            "code": 200,
            "message": "successful",
            "trace_id": "yz7-0a3e",
            "data": data,
        }

    # --- the server ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "inside running() only"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @contextlib.contextmanager
    def running(self) -> Iterator[PlatformApis]:
        apis = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                apis.requests.append((parts.path, query, body))
                if parts.path.startswith("/api/"):
                    answer = apis.youzan(
                        parts.path, query, body, self.headers.get("Content-Type") or ""
                    )
                else:
                    answer = apis.douyin(parts.path, query, body)
                out = json.dumps(answer, ensure_ascii=False).encode()
                self.send_response(200)  # both platforms answer errors with HTTP 200
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(5)


def closed_port_url() -> str:
    """A local URL nothing listens on: an unreachable platform."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
