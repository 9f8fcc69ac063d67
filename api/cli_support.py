"""What every `scrm <context> ...` command module shares: the envelope of a command given at the
terminal, bringing an embedded store's read models up to date, and printing refusals the one
way (`refused: <code>: <detail> (field f)` on stderr, exit 1)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from domain.shared import DomainError, Meta, Recorded
from infra.bootstrap import Container, bootstrap
from infra.settings import Settings
from projections.engine import NotCaughtUp

err = Console(stderr=True)
By = Annotated[str, typer.Option(help="who is acting: recorded as user:<by>")]
# The options of every command publishing a version of configuration from a JSON file.
EffectiveFrom = Annotated[
    str | None, typer.Option(help="business time it takes effect, ISO-8601; default now")
]
ExpectedVersion = Annotated[
    int | None, typer.Option(min=0, help="the version you changed, 0 for none (refused if stale)")
]


def cli_meta(context: str, command: str, by: str) -> Meta:
    return Meta(
        occurred_at=datetime.now(UTC),
        actor=f"user:{by}",
        source="cli",
        correlation_id=str(uuid.uuid4()),
        causation_id=f"cli:{context} {command}",
    )


def json_file(path: Path) -> Any:
    """A JSON file's content (a definition to publish), or a usage error naming the file."""
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise typer.BadParameter(f"{path}: {exc}", param_hint="FILE") from None


def moment(value: str, option: str) -> datetime:
    """An option's ISO-8601 time with a timezone, in UTC."""
    try:
        found = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO-8601 time", param_hint=option) from None
    if found.tzinfo is None:
        raise typer.BadParameter(
            f"{value!r} needs a timezone, e.g. 2026-11-09T10:00:00+08:00", param_hint=option
        )
    return found.astimezone(UTC)


def current(c: Container) -> None:
    """Embedded mode: bring the read models up to the log, then let every log follower record
    what follows from it (earnings, points and tiers, anomaly alerts, automation, campaign
    rewards, segment memberships, ...) and project that too, until nothing more follows. In
    server mode `scrm project` does this continuously."""
    from projections.follower import StoreFollower

    if c.in_process_projections:
        follower = StoreFollower(c.engine, c.read_log)
        follower.catch_up()
        moved = True
        while moved:  # one follower's events may be another's cause (a reward, a tier)
            moved = False
            for _, process in c.log_followers():
                while process.run_once() is not None:
                    moved = True
                    follower.catch_up()
        if c.notary is not None:  # sign a checkpoint of the seals when one is due
            c.notary.run_once()


def publish_file(
    file: Path,
    effective_from: str | None,
    meta: Meta,
    publish: Callable[[Container, Any, datetime], Recorded],
) -> tuple[Recorded, datetime]:
    """Read a definition, work out when it takes effect (default: now), and publish it; what
    the domain refuses is printed as a refusal and records nothing. Answers what was recorded
    and when it takes effect."""
    definition = json_file(file)
    when = moment(effective_from, "--effective-from") if effective_from else meta.occurred_at
    with open_container() as c:
        return publish(c, definition, when), when


@contextmanager
def open_container() -> Iterator[Container]:
    """The container for one command; a refusal prints as a refusal and exits 1."""
    c = bootstrap(Settings())
    try:
        yield c
    except DomainError as exc:
        err.print(
            f"[red]refused: {exc.code}: {escape(exc.detail)}[/red]"
            + (f" (field {escape(exc.field)})" if exc.field else ""),
            soft_wrap=True,
            highlight=False,
        )
        raise typer.Exit(1) from None
    except NotCaughtUp as exc:
        err.print(f"[red]behind the log: {escape(str(exc))}[/red]", soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        c.close()


class LogProgress:
    """A bar on stderr over the log: advanced by events (`scrm rebuild`) or moved to the
    position reached out of the cut (`scrm replay`)."""

    def __init__(self, progress: Progress, description: str, total: int):
        self._progress = progress
        self._task = progress.add_task(description, total=total)
        self.events = 0
        self._by_position = False

    def advance(self, events: int) -> None:
        self.events += events
        self._progress.advance(self._task, events)

    def reached(self, position: int, cut: int) -> None:
        self._by_position = True
        self._progress.update(self._task, completed=position, total=cut)

    def finish(self) -> None:
        if not self._by_position:  # positions may have gaps: show the events counted
            self._progress.update(self._task, completed=self.events, total=max(self.events, 1))


@contextmanager
def log_progress(description: str, total: int) -> Iterator[LogProgress]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
    ) as progress:
        bar = LogProgress(progress, description, total)
        yield bar
        bar.finish()
