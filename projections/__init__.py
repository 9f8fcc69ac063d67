"""Read models. Each module is one read model: its tables, its handlers, its queries."""

from __future__ import annotations

from projections.base import Projection


def all_projections() -> list[Projection]:
    from projections.conversations.access_log import AccessLog
    from projections.conversations.alerts import Alerts
    from projections.conversations.messages import Messages
    from projections.customers.channel_stats import ChannelStats
    from projections.customers.portrait import Portrait
    from projections.customers.staff import StaffDirectory

    return [StaffDirectory(), Portrait(), ChannelStats(), Messages(), Alerts(), AccessLog()]
