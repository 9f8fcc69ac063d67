"""The bench's subprocesses (API, relay, projector): start, supervise, check and stop them.

They run apart from the benchmark so that they do not share its GIL. Each writes its output to
`<name>.log` in the scratch directory, which is where a failure's explanation is read from.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from rich.console import Console

MAX_RESTARTS = 20  # per supervised process (relay, projector)


class Processes:
    def __init__(self, tmp: Path, env: dict[str, str], notes: list[str], err: Console):
        self.tmp = tmp
        self.env = env
        self.notes = notes
        self.err = err
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.lock = threading.RLock()
        self.supervised: dict[str, list[str]] = {}  # name -> args, restarted when they die
        self.crashes: list[tuple[str, int, str]] = []  # name, exit code, last line of its log
        self.halt = threading.Event()
        self.supervisor = threading.Thread(target=self._supervise, name="bench-supervisor")

    def start_supervisor(self) -> None:
        self.supervisor.start()

    def spawn(self, name: str, args: list[str], supervised: bool = False) -> None:
        """Start `python <args>` with the bench's environment. A supervised process that
        dies is started again (as docker-compose's `restart: unless-stopped` would do) and
        the crash is reported."""
        with self.lock:
            log = (self.tmp / f"{name}.log").open("ab")
            proc = subprocess.Popen(
                [sys.executable, *args],
                env=self.env,
                cwd=self.tmp,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            self.procs[name] = proc
            if supervised:
                self.supervised[name] = args
            else:
                self.supervised.pop(name, None)

    def _supervise(self) -> None:
        while not self.halt.wait(0.05):
            with self.lock:
                for name, args in list(self.supervised.items()):
                    proc = self.procs.get(name)
                    if proc is None or proc.poll() is None:
                        continue
                    lines = [x for x in self.log_tail(name, 40).splitlines() if x.strip()]
                    why = lines[-1].strip() if lines else "no output"
                    self.crashes.append((name, proc.returncode, why))
                    if sum(1 for c in self.crashes if c[0] == name) > MAX_RESTARTS:
                        self.supervised.pop(name)  # let check_alive report it
                        continue
                    self.err.print(f"[yellow]bench {name} died ({why}); restarting it[/yellow]")
                    self.spawn(name, args, supervised=True)

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.tmp / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self, *names: str) -> None:
        """Raise if one of `names` has exited and will not be restarted."""
        with self.lock:
            for name in names:
                proc = self.procs[name]
                if proc.poll() is not None and name not in self.supervised:
                    raise RuntimeError(
                        f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}"
                    )

    def stop(self, name: str, timeout: float = 15.0) -> None:
        with self.lock:
            proc = self.procs.pop(name, None)
            self.supervised.pop(name, None)
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            started = time.perf_counter()
            try:
                proc.wait(timeout)
                took = time.perf_counter() - started
                if took > 3:
                    self.notes.append(f"{name} took {took:.1f} s to stop on SIGTERM")
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
                self.notes.append(f"{name} ignored SIGTERM for {timeout:.0f} s and was killed")
        elif proc.returncode not in (0, -signal.SIGTERM):
            self.notes.append(f"{name} had exited with {proc.returncode}")

    def close(self) -> None:
        """Stop supervising, then stop whatever still runs."""
        self.halt.set()
        if self.supervisor.ident is not None:
            self.supervisor.join(timeout=5)
        for name in list(self.procs):
            with contextlib.suppress(Exception):  # clean-up goes on with the others
                self.stop(name)
