"""`scrm replay`: read models as they stood at a time or a log position, rebuilt into a separate
target (a SQLite file or a PostgreSQL database) without touching the live ones (infra/replay.py,
docs/replay.md)."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Annotated

import typer

from api.cli_support import LogProgress, err, log_progress, open_container
from infra import replay as replays
from infra.db import Database


def replay(
    projection: Annotated[
        list[str],
        typer.Option(
            "--projection",
            "-p",
            metavar="NAME",
            help="a read model to replay (e.g. ledger, portrait); give it again for more",
        ),
    ],
    into: Annotated[
        str,
        typer.Option(
            "--into",
            metavar="TARGET",
            help="a SQLite file (e.g. var/q3.sqlite) or the postgresql:// URL of a separate,"
            " existing database; never the live one",
        ),
    ],
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            metavar="T",
            help="ISO-8601 time with a timezone: the read model as the system knew it then"
            " (recorded time: every event recorded at or before T)",
        ),
    ] = None,
    position: Annotated[
        int | None,
        typer.Option(min=0, metavar="N", help="instead of --as-of: every event up to position N"),
    ] = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="if TARGET already holds these read models, drop and replay them there"
            " (TARGET only)",
        ),
    ] = False,
) -> None:
    """Rebuild read models as they stood at T (or position N) into TARGET, leaving the live
    read models untouched: ledger balances at quarter end, a portrait as staff saw it on a
    given day. TARGET records what it holds in its table replay_info."""
    unknown = replays.unknown_names(projection)
    if unknown:
        err.print(
            f"[red]unknown read model {unknown[0]!r}; known: "
            f"{', '.join(replays.known_names())}[/red]",
            soft_wrap=True,
        )
        raise typer.Exit(2)
    if (as_of is None) == (position is None):
        err.print("[red]give exactly one of --as-of T and --position N[/red]")
        raise typer.Exit(2)
    names = list(dict.fromkeys(projection))
    with open_container() as c, ExitStack() as shown:
        moment = replays.parse_as_of(as_of) if as_of is not None else None
        bar: LogProgress | None = None

        def moved(position: int, cut: int) -> None:
            nonlocal bar
            if bar is None:  # the cut is known and the target accepted: the replay starts
                bar = shown.enter_context(log_progress(f"replay {', '.join(names)}", cut))
            bar.reached(position, cut)

        target = Database(replays.target_url(into))
        shown.callback(target.close)
        result = replays.replay_as_of(
            c,
            names=names,
            position=position,
            as_of=moment,
            into=target,
            replace=replace,
            progress=moved,
        )
    typer.echo(f"projections: {', '.join(result.projections)}")
    typer.echo(f"cut position: {result.position} (head {result.head})")
    typer.echo(f"as of: {result.as_of} (recorded time)" if result.as_of else "as of: by position")
    typer.echo(f"last event recorded at: {result.last_recorded_at or '-'}")
    typer.echo(f"events applied: {result.events}")
    typer.echo(f"target: {replays.shown(into)}")
    if result.position == 0:
        typer.echo(
            "note: the cut is before the first event: the read models are empty"
            if result.as_of
            else "note: position 0 is before the first event: the read models are empty"
        )
    if result.recorded_after:
        typer.echo(
            f"note: {result.recorded_after} event(s) at or before the cut were recorded"
            " after T (concurrent commits land in the log a little out of time order)"
        )
