"""Event state to JSON, as eventsourcing's JSONTranscoder writes it, but encoded by orjson.

eventsourcing's `JSONTranscoder.encode` runs the standard library's encoder with a Python
`default` hook for every datetime, UUID and Meta in an event (~45 µs for an archived message's
event on the 2-core bench machine). `OrjsonTranscoder.encode` first rewrites those values into
the very same `{"_type_": name, "_data_": ...}` objects the hook would have produced, then lets
orjson write the JSON (~29 µs; UTC datetimes are left to orjson, which writes them exactly as
`isoformat()` does). The stored documents decode to exactly what the standard encoder's would
(decoding is unchanged: the standard library's decoder and the registered transcodings), so
events already stored and events stored from now on are read alike.

Anything the fast path cannot vouch for is handed to the standard encoder unchanged: a value
of a type that is not exactly str, int, float, bool, None, list, tuple or dict and has no
registered transcoding (subclasses included, e.g. str enums), dict keys that are not str,
integers outside 64 bits, NaN and infinities, and whatever orjson refuses (lone surrogates).
So the output, or the error, is the standard one in every case the fast path does not take.
"""

from __future__ import annotations

import math
from datetime import UTC
from typing import Any

import orjson
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder

_PLAIN = frozenset({str, bool, type(None)})  # written as they are, nothing to check
_NATIVE = (str, int, float, list, tuple, dict)


class _Fallback(Exception):
    pass


class OrjsonTranscoder(JSONTranscoder):
    def encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(self._prepare(obj))
        except (_Fallback, orjson.JSONEncodeError, RecursionError):
            return super().encode(obj)

    def _prepare(self, o: Any) -> Any:
        t = type(o)
        if t is dict:
            out = {}
            for k, v in o.items():
                if type(k) is not str:
                    raise _Fallback
                out[k] = v if type(v) in _PLAIN else self._prepare(v)
            return out
        if t in _PLAIN:
            return o
        if t is int:
            if -(2**63) <= o < 2**64:
                return o
            raise _Fallback
        if t is float:
            if math.isfinite(o):
                return o
            raise _Fallback
        if t is list or t is tuple:
            return [v if type(v) in _PLAIN else self._prepare(v) for v in o]
        if isinstance(o, _NATIVE):  # a subclass: the standard encoder writes it natively
            raise _Fallback
        transcoding = self.types.get(t)
        if transcoding is None:
            raise _Fallback  # the standard encoder raises its own error
        if type(transcoding) is DatetimeAsISO and o.tzinfo is UTC and o.year >= 1000:
            # orjson writes a UTC datetime exactly as isoformat() does (+00:00, microseconds
            # only when there are some), without a Python call; other zones go the long way.
            return {"_type_": transcoding.name, "_data_": o}
        return {"_type_": transcoding.name, "_data_": self._prepare(transcoding.encode(o))}
