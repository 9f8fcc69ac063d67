"""The conversation archive: batch ingest, and reads that are themselves on record."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.deps import CommandMeta, ContainerDep, CurrentScope, ReadYourWrites
from domain.conversations.aggregates import ACCESS_LOG_KEY
from domain.scope import Scope
from domain.shared import ERASED, Conflict, Forbidden, Gone, InvalidInput, NotFound, derived_id
from infra.bootstrap import Container
from infra.events import sortable_time
from projections.conversations.access_log import list_reads
from projections.conversations.messages import find_messages
from projections.conversations.search import contains, keyword_filter
from projections.customers.portrait import customers_of, get_portrait, owner_department
from projections.customers.privacy import list_erasures

router = APIRouter(tags=["conversations"])


def parse_json_lines(body: bytes) -> list[object]:
    records: list[object] = []
    for number, line in enumerate(body.splitlines()):
        if not line.strip():
            continue
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            raise InvalidInput(
                f"line {number + 1} is not JSON", field=f"records[{len(records)}]"
            ) from None
    return records


@router.post("/v1/archive/batches", status_code=201)
async def ingest_batch(
    request: Request, c: ContainerDep, scope: CurrentScope, meta: CommandMeta
) -> object:
    """One batch of decrypted msgaudit records as JSON Lines: all recorded, or none."""
    if scope.role != "admin":
        raise Forbidden("only an admin (the archive puller) ingests the archive")
    records = parse_json_lines(await request.body())
    result = await run_in_threadpool(c.conversations.ingest, records, meta)
    return {
        "archived": result.archived,
        "duplicates": result.duplicates,
        "recalls": result.recalls,
        "position": result.position,
        "last_seq": result.last_seq,
    }


def _participants(
    c: Container, scope: Scope, customer_id: UUID | None, staff_id: str | None
) -> list[str] | None:
    """Whose conversations the caller may read: staff their own customers', managers their
    department's, admins and auditors anyone's."""
    if customer_id is not None:
        portrait = get_portrait(c.read_db, str(customer_id))
        if portrait is None:
            raise NotFound("customer not found")
        dept = owner_department(c.read_db, portrait["owner"]) if scope.role == "manager" else None
        scope.check_customer(portrait["owner"], dept)
        if portrait["status"] == "merged":  # its conversations are read on the survivor
            raise Conflict(
                f"this customer was merged into customer {portrait['merged_into']}; read that one",
                code="customer_merged",
                extra={"merged_into": portrait["merged_into"]},
            )
        if portrait["status"] != "active":
            if scope.role != "auditor":
                raise Gone(
                    f"this customer's data is {portrait['status']} at their request",
                    code=f"customer_{portrait['status']}",
                )
            # Auditors still read what retention keeps (and see "[erased]" after).
            erasure = list_erasures(c.read_db, customer_id=str(customer_id))
            return [s.split(":", 1)[1] for s in (erasure[0]["subjects"] if erasure else [])]
        return [i["value"] for i in portrait["identities"] if i["kind"] == "wecom_external_userid"]
    if scope.role not in ("admin", "auditor"):
        raise Forbidden("staff and managers read the archive one customer at a time (customer_id)")
    return [staff_id] if staff_id else None


SEARCH_PAGES = 20  # candidate pages a keyword search decrypts before it stops and says so


@router.get("/v1/conversations", dependencies=[ReadYourWrites])
def conversations(
    c: ContainerDep,
    scope: CurrentScope,
    meta: CommandMeta,
    purpose: Annotated[
        str,
        Query(min_length=4, max_length=200, description="why the archive is read; it is recorded"),
    ],
    customer_id: UUID | None = None,
    staff_id: Annotated[str | None, Query(max_length=64)] = None,
    room_id: Annotated[str | None, Query(max_length=128)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    keyword: Annotated[
        str | None,
        Query(max_length=200, description="substring of the text (Chinese needs no spaces)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> object:
    if scope.role == "regulator":
        raise Forbidden("regulators receive exports only")
    if room_id is not None and scope.role not in ("admin", "auditor"):
        raise Forbidden("group archives are read by admins and auditors")
    participants = _participants(c, scope, customer_id, staff_id)
    filters: dict[str, Any] = {
        # Customers who asked to be erased leave every list; auditors still see them, flagged.
        "include_restricted": scope.role == "auditor",
        "participants": participants,
        "room_id": room_id,
        "since": _iso(since, "since"),
        "until": _iso(until, "until"),
    }
    complete = True
    if keyword is None:
        found = find_messages(c.read_db, **filters, limit=limit)
        payloads = _unseal(c, found)
    else:
        found, payloads, complete = _search(c, filters, keyword, limit)
    query = {
        k: str(v)
        for k, v in {
            "customer_id": customer_id,
            "staff_id": staff_id,
            "room_id": room_id,
            "since": since,
            "until": until,
        }.items()
        if v is not None
    }
    if keyword is not None:  # what was searched may itself be personal data: kept sealed
        query["keyword"] = c.vault.seal(ACCESS_LOG_KEY, keyword)
    position = c.conversations.record_access(
        reader=scope.actor,
        role=scope.role,
        purpose=purpose,
        query=query,
        message_ids=[m["msgid"] for m in found],
        meta=meta,
    )
    items = [_present(m, p) for m, p in zip(found, payloads, strict=True)]
    return {"items": items, "complete": complete, "access_position": position}


def _search(
    c: Container, filters: dict[str, Any], keyword: str, limit: int
) -> tuple[list[dict[str, Any]], list[Any], bool]:
    """The index narrows to candidates; decrypting each one decides. Candidates come in pages
    until `limit` confirmed hits, the end, or SEARCH_PAGES pages (then `complete` is false)."""
    clause, params, wanted = keyword_filter(c.vault, keyword)
    page = max(limit * 2, 50)
    found: list[dict[str, Any]] = []
    payloads: list[Any] = []
    for n in range(SEARCH_PAGES):
        batch = find_messages(
            c.read_db, **filters, also=(clause, params), limit=page, offset=n * page
        )
        for m, payload in zip(batch, _unseal(c, batch), strict=True):
            if payload is not None and contains(payload, wanted):
                found.append(m)
                payloads.append(payload)
                if len(found) == limit:
                    return found, payloads, True
        if len(batch) < page:
            return found, payloads, True
    return found, payloads, False


def _unseal(c: Container, messages: list[dict[str, Any]]) -> list[Any]:
    """Every payload with one key-store check: a key destroyed a moment ago opens nothing."""
    plain = c.vault.unseal_many(
        [(derived_id("subject", m["subject"]), m["sealed"]) for m in messages if m["sealed"]]
    )
    it = iter(plain)
    return [
        (None if (p := next(it)) is None else orjson.loads(p)) if m["sealed"] else None
        for m in messages
    ]


def _present(m: dict[str, Any], payload: Any) -> dict[str, Any]:
    out = {k: v for k, v in m.items() if k not in ("sealed", "subject", "restriction")}
    out["content"] = ERASED if payload is None else payload
    if m["restriction"] is not None:
        out["restricted"] = m["restriction"]
    return out


def _iso(value: datetime | None, field: str) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidInput("times must include a timezone", field=field)
    return sortable_time(value)


@router.get("/v1/conversations/messages/{msgid}", dependencies=[ReadYourWrites])
def one_message(
    msgid: Annotated[str, Path(min_length=1, max_length=128)],
    c: ContainerDep,
    scope: CurrentScope,
    meta: CommandMeta,
    purpose: Annotated[
        str,
        Query(min_length=4, max_length=200, description="why the archive is read; it is recorded"),
    ],
) -> object:
    """One archived message, for whoever may read the conversation it belongs to: staff for
    their own customers, managers their department's, admins and auditors any (groups too)."""
    if scope.role == "regulator":
        raise Forbidden("regulators receive exports only")
    found = find_messages(c.read_db, msgid=msgid, include_restricted=True, limit=1)
    if not found:
        raise NotFound("no archived message with this msgid")
    message = found[0]
    if scope.role not in ("admin", "auditor"):
        if message["room_id"]:
            raise Forbidden("group archives are read by admins and auditors")
        owners = customers_of(c.read_db, [message["sender"], *message["recipients"]])
        if not owners:
            raise Forbidden("this message is not with one of your customers")
        refused: Forbidden | None = None
        for owner in owners:
            dept = owner_department(c.read_db, owner) if scope.role == "manager" else None
            try:
                scope.check_customer(owner, dept)
                refused = None
                break
            except Forbidden as exc:
                refused = exc
        if refused is not None:
            raise refused
    if message["restriction"] is not None and scope.role != "auditor":
        raise Gone(
            f"this customer's data is {message['restriction']} at their request",
            code=f"customer_{message['restriction']}",
        )
    position = c.conversations.record_access(
        reader=scope.actor,
        role=scope.role,
        purpose=purpose,
        query={"msgid": msgid},
        message_ids=[msgid],
        meta=meta,
    )
    (payload,) = _unseal(c, [message])
    return {**_present(message, payload), "access_position": position}


@router.get("/v1/audit/archive-access", dependencies=[ReadYourWrites])
def archive_access(
    c: ContainerDep,
    scope: CurrentScope,
    reader: Annotated[str | None, Query(max_length=100)] = None,
    msgid: Annotated[str | None, Query(max_length=128)] = None,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> object:
    """Every read of archived content: who, role, purpose, what, when. Auditors and admins."""
    if scope.role not in ("auditor", "admin"):
        raise Forbidden("the archive access log is for auditors and admins")
    items = list_reads(c.read_db, reader=reader, msgid=msgid, after=after, limit=limit + 1)
    more = len(items) > limit
    items = items[:limit]
    searched = [i for i in items if "keyword" in i["query"]]
    plain = c.vault.unseal_many([(ACCESS_LOG_KEY, i["query"]["keyword"]) for i in searched])
    for item, keyword in zip(searched, plain, strict=True):
        item["query"]["keyword"] = ERASED if keyword is None else keyword
    return {"items": items, "next_after": items[-1]["position"] if more else None}
