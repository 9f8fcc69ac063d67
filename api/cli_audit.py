"""`scrm audit ...`: the auditor's questions of the log from the command line (the same as
/v1/audit, through the same infra/audit.py): one aggregate's history, its state at a version
or a time with a diff, and what one request or callback caused. Personal data stays sealed
unless asked for with --reveal and a --purpose; that read is recorded in the archive access
log as the operator's (user:<by>, role admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import orjson
import typer

from api.cli_support import By, cli_meta, current, log_progress, open_container
from domain.shared import InvalidInput
from infra import audit

audit_app = typer.Typer(
    help="The audit trail: history, time travel, correlations", no_args_is_help=True
)

# Whoever runs scrm on the server holds the master key: an operator, recorded as an admin.
CLI_ROLE = "admin"

RevealOption = Annotated[
    bool,
    typer.Option(
        "--reveal",
        help="show personal data in clear (needs --purpose). The read is recorded in the"
        " archive access log as user:<by> with role admin: a terminal user on the server"
        " is an operator. Prints an object: the answer, the revealed, erased and unopened"
        " paths, and the access position.",
    ),
]
PurposeOption = Annotated[
    str | None,
    typer.Option(help="why personal data is read in clear (4-200 characters); recorded"),
]


def _print(value: object) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _reveal(command: str, reveal: bool, purpose: str | None, by: str) -> audit.Reveal | None:
    meta = cli_meta("audit", command, by)
    return audit.reveal_request(
        reveal=reveal, purpose=purpose, reader=meta.actor, role=CLI_ROLE, meta=meta
    )


@audit_app.command("history")
def history(
    aggregate_id: Annotated[str, typer.Argument()],
    reveal: RevealOption = False,
    purpose: PurposeOption = None,
    by: By = "cli",
) -> None:
    """Every event of one aggregate, as stored, with its whole envelope (JSON: the list of
    events; with --reveal, an object with `events`)."""
    with open_container() as c:
        asked = _reveal("history", reveal, purpose, by)
        current(c)
        out = audit.history_view(c, aggregate_id, asked)
    _print(out if asked is not None else out["events"])


@audit_app.command("state")
def state(
    aggregate_id: Annotated[str, typer.Argument()],
    version: Annotated[int | None, typer.Option(min=1)] = None,
    as_of: Annotated[str | None, typer.Option(help="ISO-8601 with a timezone")] = None,
    diff_from: Annotated[int | None, typer.Option(min=1)] = None,
    reveal: RevealOption = False,
    purpose: PurposeOption = None,
    by: By = "cli",
) -> None:
    """The aggregate as it was after a version or at a time (recorded time); with
    --diff-from, what changed since that version."""
    with open_container() as c:
        asked = _reveal("state", reveal, purpose, by)
        moment = None
        if as_of is not None:
            try:
                moment = datetime.fromisoformat(as_of)
            except ValueError:
                raise InvalidInput("--as-of is not an ISO-8601 time", field="as_of") from None
        current(c)
        out = audit.state_view(
            c, aggregate_id, version=version, as_of=moment, diff_from=diff_from, reveal=asked
        )
    _print(out)


@audit_app.command("correlation")
def correlation(
    correlation_id: Annotated[str, typer.Argument()],
    reveal: RevealOption = False,
    purpose: PurposeOption = None,
    by: By = "cli",
) -> None:
    """Every event one request or callback caused, across aggregates, in log order (JSON: the
    list of events; with --reveal, an object with `events`)."""
    with open_container() as c:
        asked = _reveal("correlation", reveal, purpose, by)
        current(c)
        out = audit.correlation_view(c, correlation_id, asked)
    _print(out if asked is not None else out["events"])


@audit_app.command("verify")
def verify(
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    max_findings: Annotated[int, typer.Option(min=1, help="list at most this many")] = 50,
) -> None:
    """Recompute every stored record's digest and the seal chain, and check the signed
    checkpoints: reports the first record edited, deleted, inserted or reordered behind
    scrm's back. Exit 0 when everything verifies, 1 otherwise."""

    with open_container() as c:
        head = c.head()
        with log_progress("verify the store", total=head) as bar:
            report = c.verify_store(progress=bar.advance, max_findings=max_findings)
    body = report.as_dict()
    if as_json:
        _print(body)
    else:
        typer.echo(
            f"{report.records} records, {report.sealed} seals,"
            f" {report.checkpoints} signed checkpoints verified"
            f" (last: size {report.last_checkpoint})"
        )
        for f in report.findings:
            typer.echo(f"{f.kind.upper():10} position {f.position}: {f.detail}")
        if report.more:
            typer.echo(f"... and {report.more} more")
        typer.echo("OK: the store verifies" if report.ok else "TAMPERED: see above")
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("checkpoint")
def checkpoint() -> None:
    """Sign a checkpoint of the seal chain now (the log processes sign one every
    SCRM_CHECKPOINT_EVERY records or SCRM_CHECKPOINT_SECONDS anyway)."""
    with open_container() as c:
        assert c.notary is not None
        signed = c.notary.checkpoint()
        _print(signed.as_dict() if signed else {"signed": False, "reason": "already signed"})
