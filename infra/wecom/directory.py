"""Who a fan is across WeChat (the unionid behind an Official Account openid), and what a
WeCom customer group is (its owner and name).

In production they come from WeChat's user-info API (cgi-bin/user/info) and WeCom's
externalcontact/groupchat/get, which need access tokens; those servers cannot be reached
from here, so the shipped defaults know nothing and tests supply recorded answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class FanDirectory(Protocol):
    def unionid_of(self, app_id: str, openid: str) -> str | None: ...


class NoFanDirectory:
    def unionid_of(self, app_id: str, openid: str) -> str | None:
        return None


@dataclass(frozen=True)
class GroupChatDetails:
    owner: str | None  # the owner's WeCom UserID (群主)
    name: str | None


class ChatDirectory(Protocol):
    """What a customer group is: its owner and name. change_external_chat callbacks carry
    neither; in production they come from externalcontact/groupchat/get."""

    def group_chat(self, chat_id: str) -> GroupChatDetails | None: ...


class NoChatDirectory:
    def group_chat(self, chat_id: str) -> GroupChatDetails | None:
        return None


class KnownChats:
    """Recorded answers of the group directory (tests, demo data)."""

    def __init__(self, chats: dict[str, GroupChatDetails] | None = None):
        self.chats = dict(chats or {})

    def group_chat(self, chat_id: str) -> GroupChatDetails | None:
        return self.chats.get(chat_id)
