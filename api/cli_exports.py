"""`scrm archive export|verify`: archive exports for regulators (infra/exports.py,
docs/exports.md), the same as POST /v1/exports; and verifying one, as a regulator would."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer

from api.cli_support import By, cli_meta, err, log_progress, open_container
from domain.audit.exports import export_scope
from domain.shared import InvalidInput
from infra import exports


def _moment(value: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"--{name} is not an ISO-8601 time", field=name) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"--{name} needs a timezone (e.g. 2026-09-30T16:00:00Z)", field=name)
    return moment


def export(
    out: Annotated[Path, typer.Argument(help="a new directory, or a .tar / .tar.gz file")],
    since: Annotated[str, typer.Option("--from", help="business time, ISO-8601 with a zone")],
    until: Annotated[str, typer.Option("--to", help="business time, exclusive")],
    customer: Annotated[list[str] | None, typer.Option(help="a customer id; repeatable")] = None,
    staff: Annotated[list[str] | None, typer.Option(help="a staff id; repeatable")] = None,
    context: Annotated[
        list[str] | None, typer.Option(help="conversations, customers, orders, ...; repeatable")
    ] = None,
    by: By = "operator",
) -> None:
    """Export events for a regulator: canonical JSON Lines in segments, manifest.json with
    the Merkle root and the previous export's digest, SHA256SUMS signed with Ed25519 and
    ECDSA P-256, the public keys, and a README with the commands to verify. The export is
    recorded (ArchiveExportProduced)."""
    with open_container() as c:
        scope = export_scope(_moment(since, "from"), _moment(until, "to"), customer, staff, context)
        with log_progress("export", total=c.head()) as bar:
            result = exports.produce(
                c,
                scope,
                out,
                requested_by=f"user:{by}",
                role="admin",
                meta=cli_meta("archive", "export", by),
                progress=bar.advance,
            )
    typer.echo(orjson.dumps({**result.as_dict(), "out": str(out)}, option=orjson.OPT_INDENT_2))


def verify(
    path: Annotated[Path, typer.Argument(help="an export directory or tarball")],
    previous: Annotated[
        Path | None, typer.Option(help="the export before it: check that this one follows it")
    ] = None,
    fingerprint: Annotated[
        list[str] | None,
        typer.Option(help="a key fingerprint you trust (SHA-256 of the DER public key)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Verify an export: every file against SHA256SUMS (and no extra file), both
    signatures, the keys against --fingerprint, canonical lines in increasing positions, the
    counts, the Merkle root recomputed, and the chain with --previous. Exit 1 if anything
    fails. Needs no database."""
    try:
        report = exports.verify_export(path, previous=previous, trusted=fingerprint or ())
    except InvalidInput as exc:
        err.print(f"[red]refused: {exc.code}: {exc.detail}[/red]")
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2))
    else:
        typer.echo(f"export {report.number}: {report.events} events, digest {report.digest}")
        for key, fp in report.fingerprints.items():
            typer.echo(f"signed by {key} key {fp}")
        for finding in report.findings:
            typer.echo(f"FAILED: {finding}")
        typer.echo("OK: the export verifies" if report.ok else "NOT VERIFIED")
    if not report.ok:
        raise typer.Exit(1)


def bench(
    quick: Annotated[bool, typer.Option(help="50,000 events instead of 1,000,000")] = False,
    events: Annotated[int | None, typer.Option(min=1000, help="events in the store")] = None,
) -> None:
    """Export and verify a store of 1,000,000 events (PostgreSQL scratch database), beside
    COPY and sha256sum measured in the same run (docs/benchmarks.md)."""
    from api.bench.exports import run_export_bench
    from infra.settings import Settings

    raise typer.Exit(run_export_bench(Settings(), events=events, quick=quick))
