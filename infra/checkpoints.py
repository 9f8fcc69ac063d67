"""Named positions that only move forward: how far the relay published, how far each read
model and the projector got. One table each, one shape, one set of rules."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from infra.db import Database


class Checkpoints:
    def __init__(self, db: Database, table: str, names: list[str] | tuple[str, ...] = ()):
        self.db = db
        self.table = table
        with db.transaction() as cur:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {table}"
                " (name TEXT PRIMARY KEY, position BIGINT NOT NULL)"
            )
            for name in names:
                self.ensure(cur, name)

    def ensure(self, cur: Any, name: str) -> None:
        cur.execute(
            f"INSERT INTO {self.table} (name, position) VALUES (?, 0)"
            " ON CONFLICT (name) DO NOTHING",
            (name,),
        )

    def all(self) -> dict[str, int]:
        return {n: int(p) for n, p in self.db.query(f"SELECT name, position FROM {self.table}")}

    def get(self, name: str) -> int:
        rows = self.db.query(f"SELECT position FROM {self.table} WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else 0

    def lock(self, cur: Any, name: str) -> int:
        """Read inside a transaction; on PostgreSQL the row stays locked until it ends, so
        two writers of one checkpoint (a live projector, a rebuild) take turns."""
        lock = " FOR UPDATE" if self.db.dialect == "postgres" else ""
        cur.execute(f"SELECT position FROM {self.table} WHERE name = ?{lock}", (name,))
        row = cur.fetchone()
        return int(row[0]) if row else 0

    def lock_many(self, cur: Any, names: Iterable[str]) -> dict[str, int]:
        """lock() for several names in one statement (one round trip, not one each), in
        name order: every writer that locks several takes them in that order, so two never
        wait on each other crosswise."""
        wanted = sorted(set(names))
        if not wanted:
            return {}
        lock = " FOR UPDATE" if self.db.dialect == "postgres" else ""
        cur.execute(
            f"SELECT name, position FROM {self.table}"
            f" WHERE name IN ({','.join('?' * len(wanted))}) ORDER BY name{lock}",
            wanted,
        )
        found = {name: int(position) for name, position in cur.fetchall()}
        return {name: found.get(name, 0) for name in wanted}

    def advance(self, cur: Any, name: str, position: int) -> None:
        """Inside the caller's transaction; never backwards, whoever else is running."""
        cur.execute(
            f"UPDATE {self.table} SET position = ? WHERE name = ? AND position < ?",
            (position, name, position),
        )

    def advance_many(self, cur: Any, positions: dict[str, int]) -> None:
        """advance() for several names; on PostgreSQL in one statement (each statement costs
        a small batch of events more than its rows do)."""
        if self.db.dialect != "postgres" or len(positions) < 2:
            for name, position in positions.items():
                self.advance(cur, name, position)
            return
        values = ", ".join(["(?, CAST(? AS BIGINT))"] * len(positions))
        cur.execute(
            f"UPDATE {self.table} AS t SET position = v.position"
            f" FROM (VALUES {values}) AS v(name, position)"
            " WHERE t.name = v.name AND t.position < v.position",
            [value for item in sorted(positions.items()) for value in item],
        )

    def reset(self, cur: Any, name: str) -> None:
        cur.execute(f"UPDATE {self.table} SET position = 0 WHERE name = ?", (name,))
