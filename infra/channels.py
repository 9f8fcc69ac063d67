"""The channel anomaly detector: follows the log after the read models and records
`ChannelAnomalyDetected` for each window of a code whose scans break its thresholds
(domain/channels/rules.py, docs/channel-anomalies.md).

A round looks at the windows the new scans fall in, counts each from the read model (every
scan of the window it holds, so a burst is caught while it happens) and, when a rule fires,
records the alert. An alert's id is its code's and window's, so a retried round, or two
processes running rounds at once, record it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from domain.channels.application import Evidence, InForce
from domain.channels.rules import Baseline, per_window
from infra.events import EventRecord
from infra.processes import BehindTheReadModels
from projections.channels import anomalies as read

PROCESS = "channel-anomalies"
# The scans the read model counts (projections/channels/anomalies.py), by business name.
SCANS = frozenset(
    n for n, h in read.ChannelAnomalies._handlers.items() if n.startswith("ChannelCode")
)
MIN_HISTORY = timedelta(days=1)  # less history than this says nothing about a code's rate


class AnomalyDetector(BehindTheReadModels):
    MARK, TABLE = "detected", "channel_anomalies_detector_positions"

    def handle(self, records: Sequence[EventRecord]) -> None:
        """A round's scans, window by window: each window touched is judged once, at the
        latest of its scans here (the one the alert names as its cause)."""
        loaded: dict[str, object] = {}  # thresholds aggregates, loaded once a round
        windows: dict[tuple[str, datetime, int], tuple[InForce, EventRecord]] = {}
        for r in records:
            if r.name not in SCANS:
                continue
            decided = self.c.channels.in_force(r.originator_id, r.ts(), loaded)
            t = decided.thresholds
            start = t.window_of(r.ts())[0]
            windows[(r.originator_id, start, t.window_minutes)] = (decided, r)
        for (code_id, start, _), (decided, r) in windows.items():
            self._judge(code_id, start, decided, r)

    def _judge(self, code_id: str, start: datetime, decided: InForce, cause: EventRecord) -> None:
        t = decided.thresholds
        end = start + timedelta(minutes=t.window_minutes)
        scans, refused = read.window_scans(self.c.read_db, code_id, start, end)
        count = scans + refused
        code = self.c.read_db.query(
            "SELECT name, created_at FROM channel_stats_codes WHERE code_id = ?", (code_id,)
        )
        name, created = (str(code[0][0]), code[0][1]) if code else ("", None)
        baseline = None
        # The baseline costs a query over days of minutes: only when it could matter, or
        # when an alert will show it as evidence.
        if t.baseline is not None and count >= t.baseline.min_count:
            baseline = self._baseline(code_id, start, created, t.window_minutes, t.baseline.days)
        rules = t.judge(start, count, baseline)
        if not rules:
            return
        days = (t.baseline or Baseline()).days  # the default span when the rule is off
        if baseline is None:
            baseline = self._baseline(code_id, start, created, t.window_minutes, days)
        zone = ZoneInfo(t.quiet_hours.timezone if t.quiet_hours else "Asia/Shanghai")
        evidence = Evidence(
            code_id=code_id,
            code_name=name,
            window_start=start,
            window_end=end,
            local_start=start.astimezone(zone).isoformat(),
            count=count,
            refused=refused,
            baseline=str(baseline) if baseline is not None else None,
            baseline_days=days,
            rules=rules,
            decided_by=decided,
        )
        self.c.channels.record_anomaly(evidence, cause.caused(f"system:{PROCESS}", "channels"))

    def _baseline(
        self, code_id: str, start: datetime, created: str | None, window: int, days: int
    ) -> Decimal | None:
        """The code's scans per window over the `days` before `start`, or since it was made
        if that is later; None with less than a day of history."""
        since = start - timedelta(days=days)
        if created is not None:
            since = max(since, datetime.fromisoformat(created))
        if start - since < MIN_HISTORY:
            return None
        scans, refused = read.window_scans(self.c.read_db, code_id, since, start)
        return per_window(scans + refused, start - since, window)
