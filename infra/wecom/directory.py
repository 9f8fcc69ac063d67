"""Who a fan is across WeChat: the unionid behind an Official Account openid.

In production it comes from WeChat's user-info API (cgi-bin/user/info, which needs the
account's access token); that server cannot be reached from here, so the shipped default
knows nothing and tests supply recorded answers.
"""

from __future__ import annotations

from typing import Protocol


class FanDirectory(Protocol):
    def unionid_of(self, app_id: str, openid: str) -> str | None: ...


class NoFanDirectory:
    def unionid_of(self, app_id: str, openid: str) -> str | None:
        return None
