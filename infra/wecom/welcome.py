"""Welcome messages (欢迎语) through WeCom.

The production sender would POST {"welcome_code", "text": {"content"}} to WeCom's
externalcontact/send_welcome_msg with the app's access token. That server cannot be reached
from here, so the shipped default records what it was asked to send; tests read it.
"""

from __future__ import annotations

import threading


class RecordingWelcomeSender:
    """Remembers each (welcome_code, text) instead of calling WeCom. With `fail_with` set,
    every send is refused with that reason, as WeCom's errcode would be."""

    def __init__(self, fail_with: str | None = None):
        self.fail_with = fail_with
        self.sent: list[tuple[str, str]] = []
        self._lock = threading.Lock()  # callbacks are handled on a thread pool

    def send_welcome(self, welcome_code: str, text: str) -> str | None:
        if self.fail_with is not None:
            return self.fail_with
        with self._lock:
            self.sent.append((welcome_code, text))
        return None
