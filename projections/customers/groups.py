"""Customer groups (客户群): each group with its owner and status, and its members as far as
WeCom's member changes have named them."""

from __future__ import annotations

from typing import Any

from domain.customers.groups import CustomerGroup
from infra.db import Database
from infra.events import EventRecord
from projections.base import Projection, handles, select

_GROUP_COLUMNS = [
    "chat_id",
    "owner",
    "name",
    "status",
    "first_change",
    "created_at",
    "dismissed_at",
    "notice_changed_at",
    "member_count",
    "last_change_at",
    "version",
    "added_position",
]


class Groups(Projection):
    name = "groups"
    tables = ("groups_members", "groups_chats")
    ddl = (
        "CREATE TABLE IF NOT EXISTS groups_chats ("
        " group_id TEXT PRIMARY KEY, chat_id TEXT NOT NULL UNIQUE, owner TEXT, name TEXT,"
        " status TEXT NOT NULL, first_change TEXT NOT NULL, created_at TEXT NOT NULL,"
        " dismissed_at TEXT, notice_changed_at TEXT, member_count BIGINT NOT NULL,"
        " last_change_at TEXT NOT NULL, version BIGINT NOT NULL,"
        " added_position BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS groups_chats_owner ON groups_chats (owner)",
        "CREATE TABLE IF NOT EXISTS groups_members ("
        " group_id TEXT NOT NULL, userid TEXT NOT NULL, kind TEXT NOT NULL, customer_id TEXT,"
        " status TEXT NOT NULL, since TEXT NOT NULL, scene BIGINT,"
        " PRIMARY KEY (group_id, userid))",
        "CREATE INDEX IF NOT EXISTS groups_members_customer ON groups_members (customer_id)",
    )

    @staticmethod
    def _touch(e: EventRecord, cur: Any, sql: str = "", params: tuple[Any, ...] = ()) -> None:
        cur.execute(
            f"UPDATE groups_chats SET {sql}version = ?, last_change_at = ? WHERE group_id = ?",
            (*params, e.originator_version, e.occurred_at, e.originator_id),
        )

    @handles(CustomerGroup, "Created")
    def _created(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO groups_chats (group_id, chat_id, owner, name, status, first_change,"
            " created_at, member_count, last_change_at, version, added_position)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                e.originator_id,
                d["chat_id"],
                d["owner"],
                d["name"],
                "active",
                d["first_change"],
                e.occurred_at,
                0,
                e.occurred_at,
                e.originator_version,
                e.position,
            ),
        )

    def _members(self, e: EventRecord, cur: Any, status: str) -> None:
        for m in e.data["members"]:
            cur.execute(
                "INSERT INTO groups_members (group_id, userid, kind, customer_id, status, since,"
                " scene) VALUES (?,?,?,?,?,?,?) ON CONFLICT (group_id, userid) DO UPDATE"
                " SET status = excluded.status, since = excluded.since, scene = excluded.scene,"
                " customer_id = COALESCE(excluded.customer_id, groups_members.customer_id)",
                (
                    e.originator_id,
                    m["userid"],
                    m["kind"],
                    m["customer_id"],
                    status,
                    e.occurred_at,
                    e.data["scene"],
                ),
            )
        self._touch(
            e,
            cur,
            "member_count = (SELECT COUNT(*) FROM groups_members"
            " WHERE group_id = groups_chats.group_id AND status = 'joined'), ",
        )

    @handles(CustomerGroup, "MembersJoined")
    def _joined(self, e: EventRecord, cur: Any) -> None:
        self._members(e, cur, "joined")

    @handles(CustomerGroup, "MembersQuit")
    def _quit(self, e: EventRecord, cur: Any) -> None:
        self._members(e, cur, "quit")

    @handles(CustomerGroup, "OwnerChanged")
    def _owner_changed(self, e: EventRecord, cur: Any) -> None:
        self._touch(e, cur, "owner = ?, ", (e.data["owner"],))

    @handles(CustomerGroup, "Renamed")
    def _renamed(self, e: EventRecord, cur: Any) -> None:
        self._touch(e, cur, "name = ?, ", (e.data["name"],))

    @handles(CustomerGroup, "NoticeChanged")
    def _notice_changed(self, e: EventRecord, cur: Any) -> None:
        self._touch(e, cur, "notice_changed_at = ?, ", (e.occurred_at,))

    @handles(CustomerGroup, "Dismissed")
    def _dismissed(self, e: EventRecord, cur: Any) -> None:
        self._touch(e, cur, "status = 'dismissed', dismissed_at = ?, ", (e.occurred_at,))


# --- queries ---------------------------------------------------------------------------------


def _present(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["cursor"] = int(out.pop("added_position"))
    out["member_count"] = int(out["member_count"])
    out["version"] = int(out["version"])
    return out


def list_groups(
    db: Database,
    *,
    owner: str | None = None,
    status: str | None = None,
    department: str | None = None,
    after: int = 0,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Groups in the order we first heard of them, keyset-paged by `after` (a position)."""
    where: list[str] = ["added_position > ?"]
    params: list[object] = [after]
    if owner is not None:
        where.append("owner = ?")
        params.append(owner)
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if department is not None:
        where.append("owner IN (SELECT staff_id FROM staff_members WHERE department = ?)")
        params.append(department)
    rows = select(
        db, "groups_chats", _GROUP_COLUMNS, where, params, order="added_position", limit=limit
    )
    return [_present(r) for r in rows]


def get_group(db: Database, chat_id: str) -> dict[str, Any] | None:
    columns = ["group_id", *_GROUP_COLUMNS]
    rows = select(db, "groups_chats", columns, ["chat_id = ?"], [chat_id], order="chat_id", limit=1)
    if not rows:
        return None
    group = _present(rows[0])
    group_id = group.pop("group_id")
    # A member who became a customer after joining is linked through the portrait's
    # identities, which know every customer's external userid.
    members = db.query(
        "SELECT m.userid, m.kind, COALESCE(m.customer_id, i.customer_id), m.status, m.since,"
        " m.scene FROM groups_members m LEFT JOIN portrait_identities i"
        " ON m.kind = 'external' AND i.kind = 'wecom_external_userid' AND i.value = m.userid"
        " WHERE m.group_id = ? ORDER BY m.status, m.since, m.userid",
        (group_id,),
    )
    group["members"] = [
        {
            "userid": r[0],
            "kind": r[1],
            "customer_id": r[2],
            "status": r[3],
            "since": r[4],
            "scene": None if r[5] is None else int(r[5]),
        }
        for r in members
    ]
    return group
