"""Request shapes of reconciliation (对账). A statement travels inside the JSON: as text
(`content`), or as the file's bytes in base64 (`content_base64`) with their `encoding`, so an
Alipay bill can be sent as the GBK file it is."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.schemas.customers import Strict

Channel = Literal["wechat_pay", "alipay", "douyin"]
Platform = Literal["taobao", "jd", "pdd", "douyin", "youzan"]


class StatementImportCreate(Strict):
    channel: Channel
    file_name: str = Field(min_length=1, max_length=200)
    content: str | None = None  # the file's text
    content_base64: str | None = None  # or the file's bytes, base64
    encoding: str = Field(default="utf-8", min_length=1, max_length=32)  # of content_base64
    # The rate the channel charges (0.006 = 0.6%), recorded on the import.
    fee_rate: str = Field(min_length=1, max_length=12, pattern=r"^0(\.\d{1,8})?$")
    tolerance_fen: int = Field(default=0, ge=0, le=10_000)
    # WeChat Pay / Alipay: the order platforms whose orders those channels take (default all).
    platforms: list[Platform] | None = Field(default=None, min_length=1, max_length=5)


class FindingResolution(Strict):
    resolution: Literal["explained", "adjusted", "written_off"]
    note: str = Field(min_length=1, max_length=500)
