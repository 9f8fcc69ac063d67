"""Sources of the msgaudit feed (`domain.conversations.feed.ArchiveFeed`).

`JsonLinesFeed` serves decrypted records recorded to JSON Lines: what tests, demos and
operators use without WeCom's native SDK (`scrm archive pull --from-file PATH`). One record a
line, the JSON object DecryptData yields with the `seq` GetChatData listed it under, e.g.

    {"seq": 196, "msgid": "1000...", "action": "send", "from": "zhang.wei",
     "tolist": ["wmXXXX"], "roomid": "", "msgtime": 1767000000000, "msgtype": "text",
     "text": {"content": "..."}}

`WecomSdkFeed` is where the native SDK plugs in; see its docstring.
"""

from __future__ import annotations

import bisect
from pathlib import Path
from typing import Any

import orjson


class FeedFileError(ValueError):
    """A recorded feed that cannot be served: names the file and line."""


class JsonLinesFeed:
    """Decrypted msgaudit records from a `.jsonl` file, or from every `*.jsonl` file of a
    directory (read in name order). Records are served in seq order whatever the order of
    the lines; the same seq twice is refused (WeCom never reuses one), so is a record
    without a whole-number seq."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        files = sorted(self.path.glob("*.jsonl")) if self.path.is_dir() else [self.path]
        by_seq: dict[int, dict[str, Any]] = {}
        for file in files:
            for n, line in enumerate(file.read_bytes().splitlines(), start=1):
                if not line.strip():
                    continue
                where = f"{file.name} line {n}"
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise FeedFileError(f"{where} is not JSON") from None
                seq = record.get("seq") if isinstance(record, dict) else None
                if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
                    raise FeedFileError(f"{where} has no whole-number seq")
                if seq in by_seq:
                    raise FeedFileError(f"{where} repeats seq {seq}")
                by_seq[seq] = record
        self._seqs = sorted(by_seq)
        self._records = [by_seq[s] for s in self._seqs]

    def __len__(self) -> int:
        return len(self._records)

    def fetch(self, after_seq: int, limit: int) -> list[dict[str, Any]]:
        start = bisect.bisect_right(self._seqs, after_seq)
        return [dict(r) for r in self._records[start : start + limit]]


class WecomSdkFeed:
    """The live feed through WeCom's native 会话内容存档 SDK — NOT IMPLEMENTED here: the SDK is
    a closed-source shared library (libWeWorkFinanceSdk_C.so, Linux x86-64) that WeCom hands
    to each corporation, and it is not available in this build or its CI.

    Where it plugs in: a class with this `fetch(after_seq, limit)` that, through ctypes or a
    small C extension,
      1. once: `NewSdk()` and `Init(sdk, corpid, secret)` (the archive secret, not the app's);
      2. per fetch: `GetChatData(sdk, after_seq, min(limit, 1000), proxy, passwd, timeout,
         slice)`, whose JSON is `{"errcode", "errmsg", "chatdata": [{"seq", "msgid",
         "publickey_ver", "encrypt_random_key", "encrypt_chat_msg"}, ...]}`;
      3. per item: RSA-decrypt (PKCS#1 v1.5) the base64 `encrypt_random_key` with the private
         key of `publickey_ver` (keep every version's key: old records use old keys), then
         `DecryptData(random_key, encrypt_chat_msg, slice)` gives the message JSON;
      4. return those objects in seq order, each with `"seq": item["seq"]` added.
    A non-zero errcode is raised (the pull stops; its cursor stays at the last committed
    batch). Media (sdkfileid) is fetched separately with GetMediaData and is not part of the
    feed. Everything after `fetch` — resuming, idempotency, sealing, scanning — is
    `domain.conversations.feed.pull` and is the same for this feed and `JsonLinesFeed`.
    """

    def __init__(self, *_: object, **__: object):
        raise NotImplementedError(
            "the WeCom archive SDK (libWeWorkFinanceSdk_C.so) is not part of this build; "
            "record decrypted records to JSON Lines and use JsonLinesFeed"
        )

    def fetch(self, after_seq: int, limit: int) -> list[dict[str, Any]]:
        raise NotImplementedError
