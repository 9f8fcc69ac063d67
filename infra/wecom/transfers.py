"""Customer and group transfers through WeCom (在职转接 / 离职继承).

The production client would POST to externalcontact/transfer_customer (or, for a member who
has left, externalcontact/resigned/transfer_customer) with handover_userid, takeover_userid
and at most 100 external_userid, and to groupchat/onjob_transfer (groupchat/transfer) with
chat_id_list and new_owner, reading each customer's or failed chat's errcode. That server
cannot be reached from here, so the shipped default records what it was asked and answers 0
(the transfer has started); tests set `refuse` to have WeCom answer an errcode.
"""

from __future__ import annotations

import threading


class RecordingWecomTransfers:
    """Remembers each call instead of calling WeCom. `refuse` maps an external userid or a
    chat id to the errcode WeCom answers for it (e.g. 40099, the receiver at their limit),
    once: the next call about it succeeds."""

    def __init__(self) -> None:
        self.refuse: dict[str, int] = {}
        self.calls: list[dict[str, object]] = []
        self._lock = threading.Lock()  # commands run on a thread pool

    def transfer_customers(
        self,
        *,
        departed: bool,
        handover_userid: str,
        takeover_userid: str,
        external_userids: list[str],
    ) -> dict[str, int]:
        if not 0 < len(external_userids) <= 100:
            raise ValueError("WeCom transfers 1 to 100 customers per call")
        with self._lock:
            self.calls.append(
                {
                    "api": "resigned/transfer_customer" if departed else "transfer_customer",
                    "handover_userid": handover_userid,
                    "takeover_userid": takeover_userid,
                    "external_userid": list(external_userids),
                }
            )
            return {u: self.refuse.pop(u, 0) for u in external_userids}

    def transfer_groups(
        self, *, departed: bool, chat_ids: list[str], new_owner: str
    ) -> dict[str, int]:
        with self._lock:
            self.calls.append(
                {
                    "api": "groupchat/transfer" if departed else "groupchat/onjob_transfer",
                    "chat_id_list": list(chat_ids),
                    "new_owner": new_owner,
                }
            )
            return {c: self.refuse.pop(c, 0) for c in chat_ids}
