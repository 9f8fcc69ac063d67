"""Customer portrait (客户画像): identities, tags, owner, source code and a timeline."""

from __future__ import annotations

from typing import Any

import orjson

from domain.customers.aggregates import ChannelCode, Customer
from infra.db import Database
from infra.events import EventRecord, dumps
from projections.base import Projection, handles


class Portrait(Projection):
    name = "portrait"
    # 2: status (active, restricted, erased); 3: merges, merged_into, identities' sealed_for
    schema_version = 3
    tables = (
        "portrait_birthdays",
        "portrait_merges",
        "portrait_subscriptions",
        "portrait_contacts",
        "portrait_timeline",
        "portrait_tags",
        "portrait_identities",
        "portrait_customers",
    )
    ddl = (
        "CREATE TABLE IF NOT EXISTS portrait_customers ("
        " customer_id TEXT PRIMARY KEY, owner TEXT, source_channel_code TEXT,"
        " added_at TEXT NOT NULL, last_activity_at TEXT NOT NULL, version BIGINT NOT NULL,"
        " added_position BIGINT NOT NULL, status TEXT NOT NULL DEFAULT 'active',"
        " merged_into TEXT)",
        "CREATE INDEX IF NOT EXISTS portrait_customers_owner ON portrait_customers (owner)",
        "CREATE INDEX IF NOT EXISTS portrait_customers_code"
        " ON portrait_customers (source_channel_code)",
        "CREATE TABLE IF NOT EXISTS portrait_identities ("
        " customer_id TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL, sealed_for TEXT,"
        " PRIMARY KEY (customer_id, kind, value))",
        # whose is this buyer: an order's customer, a link's orders
        "CREATE INDEX IF NOT EXISTS portrait_identities_value ON portrait_identities (kind, value)",
        "CREATE TABLE IF NOT EXISTS portrait_tags ("
        " customer_id TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (customer_id, tag))",
        "CREATE INDEX IF NOT EXISTS portrait_tags_tag ON portrait_tags (tag)",
        # A birthday as a birthday rule finds it: the keyed hash of its month-day, no date.
        "CREATE TABLE IF NOT EXISTS portrait_birthdays ("
        " customer_id TEXT PRIMARY KEY, day_key TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS portrait_birthdays_day ON portrait_birthdays (day_key)",
        "CREATE TABLE IF NOT EXISTS portrait_contacts ("
        " customer_id TEXT NOT NULL, staff_id TEXT NOT NULL, status TEXT NOT NULL,"
        " since TEXT NOT NULL, via_channel_code TEXT, PRIMARY KEY (customer_id, staff_id))",
        "CREATE TABLE IF NOT EXISTS portrait_subscriptions ("
        " customer_id TEXT NOT NULL, app_id TEXT NOT NULL, status TEXT NOT NULL,"
        " since TEXT NOT NULL, via_channel_code TEXT, PRIMARY KEY (customer_id, app_id))",
        "CREATE TABLE IF NOT EXISTS portrait_timeline ("
        " customer_id TEXT NOT NULL, position BIGINT NOT NULL, event TEXT NOT NULL,"
        " occurred_at TEXT NOT NULL, recorded_at TEXT NOT NULL, actor TEXT NOT NULL,"
        " source TEXT NOT NULL, correlation_id TEXT NOT NULL, data TEXT NOT NULL,"
        " PRIMARY KEY (customer_id, position))",
        # One row per merge into the customer (the survivor), undone or not: the auditor's
        # who, when and why.
        "CREATE TABLE IF NOT EXISTS portrait_merges ("
        " customer_id TEXT NOT NULL, absorbed_id TEXT NOT NULL, merged_at TEXT NOT NULL,"
        " merged_by TEXT NOT NULL, reason TEXT NOT NULL, position BIGINT NOT NULL,"
        " undone_at TEXT, undone_by TEXT, undo_reason TEXT, undo_position BIGINT,"
        " PRIMARY KEY (customer_id, position))",
    )

    def _timeline(self, customer_id: str, e: EventRecord, cur: Any) -> None:
        # Held to one statement per batch; erasure writes what is held first.
        self.held.add(
            "INSERT INTO portrait_timeline (customer_id, position, event, occurred_at,"
            " recorded_at, actor, source, correlation_id, data) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                customer_id,
                e.position,
                e.name,
                e.occurred_at,
                e.recorded_at,
                e.actor,
                e.source,
                e.correlation_id,
                dumps(e.data).decode(),
            ),
        )

    def _touch(self, e: EventRecord, cur: Any) -> None:
        cur.execute(
            "UPDATE portrait_customers SET version = ?, last_activity_at = ? WHERE customer_id = ?",
            (e.originator_version, e.occurred_at, e.originator_id),
        )
        self._timeline(e.originator_id, e, cur)

    @handles(Customer, "Added")
    def _added(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO portrait_customers (customer_id, owner, source_channel_code, added_at,"
            " last_activity_at, version, added_position) VALUES (?,?,?,?,?,?,?)",
            (
                e.originator_id,
                d["owner"],
                d["source_channel_code"],
                e.occurred_at,
                e.occurred_at,
                e.originator_version,
                e.position,
            ),
        )
        for identity in d["identities"]:
            self._identity(e.originator_id, identity["kind"], identity["value"], cur)
        for tag in d["tags"]:
            self._tag(e.originator_id, tag, cur)
        self._timeline(e.originator_id, e, cur)

    @staticmethod
    def _identity(
        customer_id: str, kind: str, value: str, cur: Any, sealed_for: str | None = None
    ) -> None:
        cur.execute(
            "INSERT INTO portrait_identities (customer_id, kind, value, sealed_for)"
            " VALUES (?,?,?,?) ON CONFLICT DO NOTHING",
            (customer_id, kind, value, sealed_for),
        )

    @staticmethod
    def _tag(customer_id: str, tag: str, cur: Any) -> None:
        cur.execute(
            "INSERT INTO portrait_tags (customer_id, tag) VALUES (?,?) ON CONFLICT DO NOTHING",
            (customer_id, tag),
        )

    @handles(Customer, "IdentityAdded", "IdentityLinked")
    def _identity_added(self, e: EventRecord, cur: Any) -> None:
        self._identity(e.originator_id, e.data["kind"], e.data["value"], cur)
        self._touch(e, cur)

    @handles(Customer, "Tagged")
    def _tagged(self, e: EventRecord, cur: Any) -> None:
        for tag in e.data["tags"]:
            self._tag(e.originator_id, tag, cur)
        self._touch(e, cur)

    @handles(Customer, "Untagged")
    def _untagged(self, e: EventRecord, cur: Any) -> None:
        for tag in e.data["tags"]:
            cur.execute(
                "DELETE FROM portrait_tags WHERE customer_id = ? AND tag = ?",
                (e.originator_id, tag),
            )
        self._touch(e, cur)

    @handles(Customer, "BirthdayRecorded")
    def _birthday(self, e: EventRecord, cur: Any) -> None:
        cur.execute(
            "INSERT INTO portrait_birthdays (customer_id, day_key) VALUES (?,?)"
            " ON CONFLICT (customer_id) DO UPDATE SET day_key = excluded.day_key",
            (e.originator_id, e.data["day_key"]),
        )
        self._touch(e, cur)

    @handles(Customer, "OwnerAssigned")
    def _owner_assigned(self, e: EventRecord, cur: Any) -> None:
        cur.execute(
            "UPDATE portrait_customers SET owner = ? WHERE customer_id = ?",
            (e.data["staff_id"], e.originator_id),
        )
        self._touch(e, cur)

    def _relationship(
        self, e: EventRecord, cur: Any, table: str, key: str, status: str, code: str | None
    ) -> None:
        """A WeCom contact (keyed by staff) or an Official Account follow (keyed by app)."""
        column = "staff_id" if table == "portrait_contacts" else "app_id"
        cur.execute(
            f"INSERT INTO {table} (customer_id, {column}, status, since, via_channel_code)"
            f" VALUES (?,?,?,?,?) ON CONFLICT (customer_id, {column}) DO UPDATE"
            " SET status = excluded.status, since = excluded.since,"
            f" via_channel_code = COALESCE(excluded.via_channel_code, {table}.via_channel_code)",
            (e.originator_id, key, status, e.occurred_at, code),
        )
        self._touch(e, cur)

    @handles(Customer, "ContactAdded")
    def _contact_added(self, e: EventRecord, cur: Any) -> None:
        status = "half" if e.data["half"] else "added"
        self._relationship(
            e, cur, "portrait_contacts", e.data["staff_id"], status, e.data["channel_code"]
        )

    @handles(Customer, "ContactRemoved")
    def _contact_removed(self, e: EventRecord, cur: Any) -> None:
        self._relationship(
            e, cur, "portrait_contacts", e.data["staff_id"], f"removed_by_{e.data['by']}", None
        )

    @handles(Customer, "Subscribed")
    def _subscribed(self, e: EventRecord, cur: Any) -> None:
        self._relationship(
            e, cur, "portrait_subscriptions", e.data["app_id"], "subscribed", e.data["channel_code"]
        )

    @handles(Customer, "Unsubscribed")
    def _unsubscribed(self, e: EventRecord, cur: Any) -> None:
        self._relationship(e, cur, "portrait_subscriptions", e.data["app_id"], "unsubscribed", None)

    @handles(
        Customer, "ContactEdited", "TransferFailed", "WelcomeMessageSent", "WelcomeMessageFailed"
    )
    def _noted(self, e: EventRecord, cur: Any) -> None:
        self._touch(e, cur)

    @handles(ChannelCode, "Scanned")
    def _scanned(self, e: EventRecord, cur: Any) -> None:
        customer_id = e.data["customer_id"]
        cur.execute(
            "UPDATE portrait_customers SET last_activity_at = ? WHERE customer_id = ?",
            (e.occurred_at, customer_id),
        )
        self._timeline(customer_id, e, cur)

    # --- merges (合并客户): the absorbed customer's rows move to the survivor and back ------
    # A merge is saved survivor first, an undo absorbed customer first, so each side reads
    # the other's rows (channel code, since) before they go.

    _RELATIONSHIPS = (("portrait_contacts", "staff_id"), ("portrait_subscriptions", "app_id"))

    @staticmethod
    def _move(
        cur: Any, table: str, column: str, source: str, target: str, states: dict[str, Any]
    ) -> None:
        """Give `target` these relationships (states as the aggregate has them), keeping
        the channel code and time the source's row knows."""
        for key, state in states.items():
            row = cur.execute(
                f"SELECT since, via_channel_code FROM {table} WHERE customer_id = ?"
                f" AND {column} = ?",
                (source, key),
            ).fetchone()
            since = row[0] if row else state["as_of"].replace("+00:00", "Z")
            cur.execute(
                f"INSERT INTO {table} (customer_id, {column}, status, since, via_channel_code)"
                f" VALUES (?,?,?,?,?) ON CONFLICT (customer_id, {column}) DO UPDATE"
                " SET status = excluded.status, since = excluded.since, via_channel_code ="
                f" COALESCE(excluded.via_channel_code, {table}.via_channel_code)",
                (target, key, state["status"], since, row[1] if row else None),
            )

    @handles(Customer, "Merged")
    def _merged(self, e: EventRecord, cur: Any) -> None:
        d, survivor, absorbed = e.data, e.originator_id, e.data["absorbed_id"]
        for identity in d["identities"]:
            kind, value = identity["kind"], identity["value"]
            self._identity(survivor, kind, value, cur, identity.get("sealed_for"))
        for tag in d["added_tags"]:
            self._tag(survivor, tag, cur)
        for (table, column), (states, taken) in zip(
            self._RELATIONSHIPS,
            ((d["contacts"], d["contacts_taken"]), (d["subscriptions"], d["subscriptions_taken"])),
            strict=True,
        ):
            self._move(cur, table, column, absorbed, survivor, {k: states[k] for k in taken})
        cur.execute(
            "INSERT INTO portrait_merges (customer_id, absorbed_id, merged_at, merged_by, reason,"
            " position) VALUES (?,?,?,?,?,?)",
            (survivor, absorbed, e.occurred_at, e.actor, d["reason"], e.position),
        )
        self._touch(e, cur)

    @handles(Customer, "MergedInto")
    def _merged_into(self, e: EventRecord, cur: Any) -> None:
        # Its identities, tags and relationships are the survivor's now: left here they would
        # count twice wherever a query joins identities (orders, dashboards, groups).
        for table in (
            "portrait_identities",
            "portrait_tags",
            "portrait_contacts",
            "portrait_subscriptions",
        ):
            cur.execute(f"DELETE FROM {table} WHERE customer_id = ?", (e.originator_id,))
        cur.execute(
            "UPDATE portrait_customers SET status = 'merged', merged_into = ?"
            " WHERE customer_id = ?",
            (e.data["survivor_id"], e.originator_id),
        )
        self._touch(e, cur)

    @handles(Customer, "MergeUndone")
    def _merge_undone(self, e: EventRecord, cur: Any) -> None:
        d, absorbed, survivor = e.data, e.originator_id, e.data["survivor_id"]
        for identity in d["identities"]:
            kind, value = identity["kind"], identity["value"]
            self._identity(absorbed, kind, value, cur, identity.get("sealed_for"))
        for tag in d["tags"]:
            self._tag(absorbed, tag, cur)
        for (table, column), states in zip(
            self._RELATIONSHIPS, (d["contacts"], d["subscriptions"]), strict=True
        ):
            self._move(cur, table, column, survivor, absorbed, states)
        cur.execute(
            "UPDATE portrait_customers SET status = 'active', merged_into = NULL"
            " WHERE customer_id = ?",
            (absorbed,),
        )
        self._touch(e, cur)

    @handles(Customer, "Unmerged")
    def _unmerged(self, e: EventRecord, cur: Any) -> None:
        d, survivor = e.data, e.originator_id
        for identity in d["identities"]:
            cur.execute(
                "DELETE FROM portrait_identities WHERE customer_id = ? AND kind = ? AND value = ?",
                (survivor, identity["kind"], identity["value"]),
            )
        for tag in d["tags"]:
            cur.execute(
                "DELETE FROM portrait_tags WHERE customer_id = ? AND tag = ?", (survivor, tag)
            )
        for (table, column), keys in zip(
            self._RELATIONSHIPS, (d["contacts"], d["subscriptions"]), strict=True
        ):
            for key in keys:
                cur.execute(
                    f"DELETE FROM {table} WHERE customer_id = ? AND {column} = ?", (survivor, key)
                )
        cur.execute(
            "UPDATE portrait_merges SET undone_at = ?, undone_by = ?, undo_reason = ?,"
            " undo_position = ? WHERE customer_id = ? AND absorbed_id = ? AND undone_at IS NULL",
            (e.occurred_at, e.actor, d["reason"], e.position, survivor, d["absorbed_id"]),
        )
        self._touch(e, cur)

    # --- erasure: restricted at once, then nothing personal left once erased --------------

    @handles(Customer, "ErasureRequested")
    def _erasure_requested(self, e: EventRecord, cur: Any) -> None:
        cur.execute(
            "UPDATE portrait_customers SET status = 'restricted' WHERE customer_id = ?",
            (e.originator_id,),
        )
        self._touch(e, cur)

    @handles(Customer, "ErasureDeferred", "LegalHoldPlaced", "LegalHoldReleased")
    def _erasure_noted(self, e: EventRecord, cur: Any) -> None:
        self._touch(e, cur)

    @handles(Customer, "Erased")
    def _erased(self, e: EventRecord, cur: Any) -> None:
        self.held.write(cur)
        for table in self.tables[:-1]:  # every child table: identities, tags, timeline, ...
            cur.execute(f"DELETE FROM {table} WHERE customer_id = ?", (e.originator_id,))
        cur.execute(
            "UPDATE portrait_customers SET status = 'erased' WHERE customer_id = ?",
            (e.originator_id,),
        )
        self._touch(e, cur)


def customer_status(db: Database, customer_id: str) -> str | None:
    rows = db.query("SELECT status FROM portrait_customers WHERE customer_id = ?", (customer_id,))
    return rows[0][0] if rows else None


def get_portrait(db: Database, customer_id: str) -> dict[str, Any] | None:
    """The whole portrait of an active customer; for one restricted or erased at their
    request, only who owned them and that status."""
    rows = db.query(
        "SELECT customer_id, owner, source_channel_code, added_at, last_activity_at, version,"
        " status, merged_into FROM portrait_customers WHERE customer_id = ?",
        (customer_id,),
    )
    if not rows:
        return None
    r = rows[0]
    if r[6] not in ("active", "merged"):
        return {"id": r[0], "owner": r[1], "status": r[6], "version": int(r[5])}
    identities = db.query(
        "SELECT kind, value, sealed_for FROM portrait_identities WHERE customer_id = ?"
        " ORDER BY kind, value",
        (customer_id,),
    )
    tags = db.query(
        "SELECT tag FROM portrait_tags WHERE customer_id = ? ORDER BY tag", (customer_id,)
    )
    subscriptions = db.query(
        "SELECT app_id, status, since, via_channel_code FROM portrait_subscriptions"
        " WHERE customer_id = ? ORDER BY app_id",
        (customer_id,),
    )
    contacts = db.query(
        "SELECT staff_id, status, since, via_channel_code FROM portrait_contacts"
        " WHERE customer_id = ? ORDER BY staff_id",
        (customer_id,),
    )
    timeline = db.query(
        "SELECT position, event, occurred_at, recorded_at, actor, source, correlation_id, data"
        " FROM portrait_timeline WHERE customer_id = ? ORDER BY position",
        (customer_id,),
    )
    merges = db.query(
        "SELECT absorbed_id, merged_at, merged_by, reason, position, undone_at, undone_by,"
        " undo_reason FROM portrait_merges WHERE customer_id = ? ORDER BY position",
        (customer_id,),
    )
    return {
        "id": r[0],
        "status": r[6],
        "merged_into": r[7],
        "owner": r[1],
        "source_channel_code": r[2],
        "added_at": r[3],
        "last_activity_at": r[4],
        "version": int(r[5]),
        # sealed_for: a phone merged in stays sealed under its first customer's key.
        "identities": [
            {"kind": k, "value": v, **({"sealed_for": f} if f else {})} for k, v, f in identities
        ],
        "tags": [t for (t,) in tags],
        "subscriptions": [
            {"app_id": a, "status": b, "since": c, "via_channel_code": d}
            for a, b, c, d in subscriptions
        ],
        "contacts": [
            {"staff_id": a, "status": b, "since": c, "via_channel_code": d}
            for a, b, c, d in contacts
        ],
        "timeline": [
            {
                "position": int(t[0]),
                "event": t[1],
                "occurred_at": t[2],
                "recorded_at": t[3],
                "actor": t[4],
                "source": t[5],
                "correlation_id": t[6],
                "data": orjson.loads(t[7]),
            }
            for t in timeline
        ],
        "merges": [
            {
                "customer_id": m[0],
                "merged_at": m[1],
                "merged_by": m[2],
                "reason": m[3],
                "position": int(m[4]),
                "undone": m[5] is not None,
                "undone_at": m[5],
                "undone_by": m[6],
                "undo_reason": m[7],
            }
            for m in merges
        ],
    }


def merge_survivor(db: Database, customer_id: str) -> tuple[str, str] | None:
    """(id, status) of the customer that now holds a merged customer's facts, followed
    along merges in force."""
    for _ in range(32):
        rows = db.query(
            "SELECT status, merged_into FROM portrait_customers WHERE customer_id = ?",
            (customer_id,),
        )
        if not rows:
            return None
        if rows[0][1] is None:
            return customer_id, rows[0][0]
        customer_id = rows[0][1]
    return None


def customers_of(db: Database, wecom_ids: list[str]) -> list[str | None]:
    """The owners of the customers known by any of these WeCom external ids."""
    if not wecom_ids:
        return []
    marks = ",".join("?" * len(wecom_ids))
    rows = db.query(
        "SELECT c.owner FROM portrait_customers c JOIN portrait_identities i"
        " ON i.customer_id = c.customer_id WHERE i.kind = 'wecom_external_userid'"
        f" AND i.value IN ({marks})",
        wecom_ids,
    )
    return [r[0] for r in rows]


def owner_department(db: Database, owner: str | None) -> str | None:
    if owner is None:
        return None
    rows = db.query("SELECT department FROM staff_members WHERE staff_id = ?", (owner,))
    return rows[0][0] if rows else None


def list_customers(
    db: Database,
    *,
    tag: str | None = None,
    owner: str | None = None,
    channel_code: str | None = None,
    department: str | None = None,
    after: int = 0,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Customers in the order they were added, keyset-paged by `after` (a position)."""
    where = ["c.added_position > ?", "c.status = 'active'"]  # the restricted are hidden
    params: list[Any] = [after]
    if tag is not None:
        where.append(
            "EXISTS (SELECT 1 FROM portrait_tags t"
            " WHERE t.customer_id = c.customer_id AND t.tag = ?)"
        )
        params.append(tag)
    if owner is not None:
        where.append("c.owner = ?")
        params.append(owner)
    if channel_code is not None:
        where.append("c.source_channel_code = ?")
        params.append(channel_code)
    if department is not None:
        where.append("c.owner IN (SELECT staff_id FROM staff_members WHERE department = ?)")
        params.append(department)
    rows = db.query(
        "SELECT c.customer_id, c.owner, c.source_channel_code, c.added_at, c.last_activity_at,"
        " c.version, c.added_position FROM portrait_customers c WHERE "
        + " AND ".join(where)
        + " ORDER BY c.added_position LIMIT ?",
        (*params, limit),
    )
    ids = [r[0] for r in rows]
    tags: dict[str, list[str]] = {i: [] for i in ids}
    if ids:
        marks = ",".join("?" * len(ids))
        for cid, t in db.query(
            f"SELECT customer_id, tag FROM portrait_tags WHERE customer_id IN ({marks})"
            " ORDER BY tag",
            ids,
        ):
            tags[cid].append(t)
    return [
        {
            "id": r[0],
            "owner": r[1],
            "source_channel_code": r[2],
            "added_at": r[3],
            "last_activity_at": r[4],
            "version": int(r[5]),
            "cursor": int(r[6]),
            "tags": tags[r[0]],
        }
        for r in rows
    ]
