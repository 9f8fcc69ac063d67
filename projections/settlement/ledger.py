"""The settlement ledger (总账): every money movement settlement records, in double entry.

One posting per event that moves money; its legs always sum to zero. A leg's amount is in
fen, debit positive and credit negative, so an account's balance is the plain sum of its legs
and a liability owed is negative.

Accounts:
- `payable:<payee_id>`: what scrm owes a payee (a liability; a credit means owed more).
- `expense:settlement:<line type>`: the cost side of earnings, one account per component type
  (base_fee, regional, commission, clawback, correction, adjustment, ...).
- `payouts:in_transit`: handed to the payout gateway, not yet confirmed.
- `clearing:payout_gateway`: money that has left through the gateway (credited as it goes).

Postings:
- Earning Accrued (priced at once), Priced, Corrected, ClawedBack, DisputeResolved and a
  closed period's adjustments: per non-zero line, Dr `expense:settlement:<type>` and Cr
  `payable:<payee>` by the line's amount (a negative line reverses both naturally).
- Payout Issued and Retried: Dr `payable:<payee>`, Cr `payouts:in_transit`. Failed reverses
  the issue; Settled: Dr `payouts:in_transit`, Cr `clearing:payout_gateway`.

A posting's id is its source event, `<originator_id>:<originator_version>`, so a redelivered
event adds nothing: the engine skips positions it has applied, and the posting's primary key
is a second guard (balances move only when the posting row is new). Postings are never
updated or deleted. `ledger_balances` holds each account's current balance; a balance as of
an earlier business time is summed from the legs, which carry the posting's position and
business time so those sums and account statements read one index.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.settlement.aggregates import Earning, Payout, SettlementPeriod
from infra.db import Database
from infra.events import EventRecord, sortable_time
from projections.base import Projection, handles

IN_TRANSIT = "payouts:in_transit"
CLEARING = "clearing:payout_gateway"

Leg = tuple[str, int, str | None]  # account, amount (debit +, credit -), memo


def payable(payee_id: str) -> str:
    return f"payable:{payee_id}"


def expense(line_type: str) -> str:
    return f"expense:settlement:{line_type}"


class Ledger(Projection):
    name = "ledger"
    tables = ("ledger_legs", "ledger_postings", "ledger_balances", "ledger_payouts")
    ddl = (
        "CREATE TABLE IF NOT EXISTS ledger_postings ("
        " posting_id TEXT PRIMARY KEY, position BIGINT NOT NULL, occurred_at TEXT NOT NULL,"
        " recorded_at TEXT NOT NULL, kind TEXT NOT NULL, description TEXT NOT NULL,"
        " payee_id TEXT)",
        "CREATE TABLE IF NOT EXISTS ledger_legs ("
        " posting_id TEXT NOT NULL, leg INTEGER NOT NULL, account TEXT NOT NULL,"
        " amount BIGINT NOT NULL, position BIGINT NOT NULL, occurred_at TEXT NOT NULL,"
        " memo TEXT, PRIMARY KEY (posting_id, leg))",
        # An account's statement and its opening balance: one range of this index.
        "CREATE INDEX IF NOT EXISTS ledger_legs_account"
        " ON ledger_legs (account, position, leg, occurred_at, amount)",
        # Balances as of a business time: index-only.
        "CREATE INDEX IF NOT EXISTS ledger_legs_time ON ledger_legs (occurred_at, account, amount)",
        "CREATE TABLE IF NOT EXISTS ledger_balances ("
        " account TEXT PRIMARY KEY, balance BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS ledger_payouts ("
        " payout_id TEXT PRIMARY KEY, payee_id TEXT NOT NULL, amount BIGINT NOT NULL,"
        " payee_group TEXT, period TEXT)",
    )

    # --- earnings ---------------------------------------------------------------------------

    @handles(Earning, "Accrued")
    def _accrued(self, e: EventRecord, cur: Any) -> None:
        if e.data.get("held") is None:
            self._lines(e, cur, f"earning {e.data.get('source')} accrued")

    @handles(Earning, "Priced")
    def _priced(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        self._lines(e, cur, f"earning priced by {d.get('rule_set')} v{d.get('rule_version')}")

    @handles(Earning, "Corrected")
    def _corrected(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        why = f"earning corrected v{d.get('corrects_version')} -> v{d.get('rule_version')}"
        self._lines(e, cur, f"{why}: {d.get('reason')}")

    @handles(Earning, "ClawedBack")
    def _clawed_back(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        self._lines(e, cur, f"refund {d.get('refund_ref')} clawed back ({d.get('refunded')} fen)")

    @handles(Earning, "DisputeResolved")
    def _resolved(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        self._lines(e, cur, f"dispute {d.get('dispute_id')} {d.get('outcome')}: {d.get('note')}")

    @handles(SettlementPeriod, "Closed")
    def _closed(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        description = f"period {d.get('group')} {d.get('period')} closed: adjustments"
        self._lines(e, cur, description, d.get("adjustments") or [])

    def _lines(
        self,
        e: EventRecord,
        cur: Any,
        description: str,
        lines: list[dict[str, Any]] | None = None,
    ) -> None:
        if lines is None:
            lines = e.data.get("lines") or []
        legs: list[Leg] = []
        payees = set()
        for line in lines:
            amount = int(line["amount"])
            if amount == 0:
                continue
            memo = line.get("explanation")
            legs.append((expense(line["type"]), amount, memo))
            legs.append((payable(line["payee_id"]), -amount, memo))
            payees.add(line["payee_id"])
        payee_id = payees.pop() if len(payees) == 1 else None
        _post(cur, e, description, legs, payee_id)

    # --- payouts ----------------------------------------------------------------------------

    @handles(Payout, "Issued")
    def _issued(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        payee, amount = d["payee_id"], int(d["amount"])
        cur.execute(
            "INSERT INTO ledger_payouts (payout_id, payee_id, amount, payee_group, period)"
            " VALUES (?,?,?,?,?) ON CONFLICT (payout_id) DO NOTHING",
            (e.originator_id, payee, amount, d.get("group"), d.get("period")),
        )
        legs: list[Leg] = [(payable(payee), amount, None), (IN_TRANSIT, -amount, None)]
        _post(cur, e, f"payout {d.get('group')} {d.get('period')} issued", legs, payee)

    @handles(Payout, "Failed", "Retried", "Settled")
    def _payout_moved(self, e: EventRecord, cur: Any) -> None:
        cur.execute(
            "SELECT payee_id, amount, payee_group, period FROM ledger_payouts WHERE payout_id = ?",
            (e.originator_id,),
        )
        found = cur.fetchone()
        if found is None:  # no issue on record: nothing to move
            return
        payee, amount, group, period = found[0], int(found[1]), found[2], found[3]
        d = e.data
        legs: list[Leg]
        if e.name == "PayoutFailed":
            what = f"failed (attempt {d.get('attempt')}): {d.get('reason')}"
            legs = [(IN_TRANSIT, amount, None), (payable(payee), -amount, None)]
        elif e.name == "PayoutRetried":
            what = f"retried (attempt {d.get('attempt')})"
            legs = [(payable(payee), amount, None), (IN_TRANSIT, -amount, None)]
        else:
            what = f"settled ({d.get('gateway_ref')})"
            legs = [(IN_TRANSIT, amount, None), (CLEARING, -amount, None)]
        _post(cur, e, f"payout {group} {period} {what}", legs, payee)


def _post(
    cur: Any, e: EventRecord, description: str, legs: list[Leg], payee_id: str | None
) -> None:
    """Record one balanced posting for an event, once; move balances only if it is new."""
    legs = [leg for leg in legs if leg[1] != 0]
    if not legs:
        return
    if sum(amount for _, amount, _ in legs) != 0:
        raise ValueError(f"unbalanced posting for {e.name} at position {e.position}")
    posting_id = f"{e.originator_id}:{e.originator_version}"
    occurred_at = sortable_time(e.occurred_at)
    cur.execute(
        "INSERT INTO ledger_postings (posting_id, position, occurred_at, recorded_at, kind,"
        " description, payee_id) VALUES (?,?,?,?,?,?,?)"
        " ON CONFLICT (posting_id) DO NOTHING RETURNING posting_id",
        (
            posting_id,
            e.position,
            occurred_at,
            sortable_time(e.recorded_at),
            e.name,
            description,
            payee_id,
        ),
    )
    if not cur.fetchall():  # posted already: this event was seen before
        return
    cur.executemany(
        "INSERT INTO ledger_legs (posting_id, leg, account, amount, position, occurred_at, memo)"
        " VALUES (?,?,?,?,?,?,?)",
        [
            (posting_id, n, account, amount, e.position, occurred_at, memo)
            for n, (account, amount, memo) in enumerate(legs)
        ],
    )
    moved: dict[str, int] = {}
    for account, amount, _ in legs:
        moved[account] = moved.get(account, 0) + amount
    cur.executemany(
        "INSERT INTO ledger_balances (account, balance) VALUES (?, ?) ON CONFLICT (account)"
        " DO UPDATE SET balance = ledger_balances.balance + excluded.balance",
        sorted(moved.items()),
    )


# --- queries --------------------------------------------------------------------------------


def _moment(value: str | datetime) -> str:
    """A business time as stored (sortable_time); a time without a zone is UTC."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return sortable_time(moment)


def balances(
    db: Database, *, as_of: str | datetime | None = None, prefix: str | None = None
) -> dict[str, int]:
    """Each account's balance (optionally only accounts starting with `prefix`): now, or as
    of a business time, summing the legs of postings that occurred at or before it."""
    if as_of is None:
        rows = db.query("SELECT account, balance FROM ledger_balances ORDER BY account")
    else:
        rows = db.query(
            "SELECT account, SUM(amount) FROM ledger_legs WHERE occurred_at <= ?"
            " GROUP BY account ORDER BY account",
            (_moment(as_of),),
        )
    return {
        account: int(balance)
        for account, balance in rows
        if prefix is None or account.startswith(prefix)
    }


_STATEMENT = "posting_id leg amount position occurred_at memo kind description recorded_at payee_id"
_STATEMENT_COLUMNS = _STATEMENT.split()


def account_statement(
    db: Database,
    account: str,
    *,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    limit: int = 500,
    after_position: int = 0,
) -> list[dict[str, Any]]:
    """The account's legs in the order the ledger recorded them (position), after
    `after_position` (the cursor for the next page), optionally only those that occurred in
    [since, until). `balance` is the account's balance just after the leg, counting every
    leg recorded before it, shown or not."""
    where, params = ["l.account = ?", "l.position > ?"], [account, after_position]
    if since is not None:
        where.append("l.occurred_at >= ?")
        params.append(_moment(since))
    if until is not None:
        where.append("l.occurred_at < ?")
        params.append(_moment(until))
    rows = db.query(
        "SELECT l.posting_id, l.leg, l.amount, l.position, l.occurred_at, l.memo, p.kind,"
        " p.description, p.recorded_at, p.payee_id FROM ledger_legs l"
        " JOIN ledger_postings p ON p.posting_id = l.posting_id"
        f" WHERE {' AND '.join(where)} ORDER BY l.position, l.leg LIMIT ?",
        (*params, limit),
    )
    if not rows:
        return []
    first, last = (int(rows[0][3]), int(rows[0][1])), (int(rows[-1][3]), int(rows[-1][1]))
    (opening,) = db.query(
        "SELECT COALESCE(SUM(amount), 0) FROM ledger_legs WHERE account = ?"
        " AND (position < ? OR (position = ? AND leg < ?))",
        (account, first[0], first[0], first[1]),
    )[0]
    if since is None and until is None:  # the rows are every leg in their range
        between = [(int(r[3]), int(r[1]), int(r[2])) for r in rows]
    else:
        between = [
            (int(p), int(n), int(a))
            for p, n, a in db.query(
                "SELECT position, leg, amount FROM ledger_legs WHERE account = ?"
                " AND position >= ? AND position <= ? ORDER BY position, leg",
                (account, first[0], last[0]),
            )
        ]
    running, after = int(opening), {}
    for position, leg, amount in between:
        if (position, leg) >= first:
            running += amount
            after[(position, leg)] = running
    out = []
    for row in rows:
        item = dict(zip(_STATEMENT_COLUMNS, row, strict=True))
        key = (int(item["position"]), int(item["leg"]))
        item.update(position=key[0], leg=key[1], amount=int(item["amount"]), balance=after[key])
        out.append(item)
    return out


def check(db: Database) -> dict[str, Any]:
    """Does the ledger hold together? Every posting balances, debits equal credits, and every
    stored balance equals the sum of its account's legs (and every account with legs has one).
    Credits are reported as a positive number of fen."""
    (postings,) = db.query("SELECT COUNT(*) FROM ledger_postings")[0]
    legs, debits, credits = db.query(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN amount > 0 THEN amount ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN amount < 0 THEN -amount ELSE 0 END), 0) FROM ledger_legs"
    )[0]
    unbalanced = [
        {"posting_id": posting_id, "sum": int(total)}
        for posting_id, total in db.query(
            "SELECT posting_id, SUM(amount) FROM ledger_legs GROUP BY posting_id"
            " HAVING SUM(amount) <> 0 ORDER BY posting_id"
        )
    ]
    sums = "SELECT account, SUM(amount) AS total FROM ledger_legs GROUP BY account"
    mismatches = [
        {"account": account, "balance": int(balance), "legs": int(total)}
        for account, balance, total in db.query(
            f"SELECT b.account, b.balance, COALESCE(s.total, 0) FROM ledger_balances b"
            f" LEFT JOIN ({sums}) s ON s.account = b.account"
            " WHERE b.balance <> COALESCE(s.total, 0) ORDER BY b.account"
        )
    ]
    mismatches += [
        {"account": account, "balance": None, "legs": int(total)}
        for account, total in db.query(
            f"SELECT s.account, s.total FROM ({sums}) s"
            " WHERE NOT EXISTS (SELECT 1 FROM ledger_balances b WHERE b.account = s.account)"
            " ORDER BY s.account"
        )
    ]
    debits, credits = int(debits), int(credits)
    return {
        "ok": not unbalanced and not mismatches and debits == credits,
        "postings": int(postings),
        "legs": int(legs),
        "debits": debits,
        "credits": credits,
        "unbalanced_postings": unbalanced,
        "balance_mismatches": mismatches,
    }
