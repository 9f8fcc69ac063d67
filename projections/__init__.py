"""Read models. Each module is one read model: its tables, its handlers, its queries."""

from __future__ import annotations

from typing import TYPE_CHECKING

from projections.base import Projection

if TYPE_CHECKING:
    from projections.conversations.search import TermSource


def all_projections(vault: TermSource | None = None) -> list[Projection]:
    """Every read model. The search index decrypts content to index it, so it needs the vault
    (the composition root passes it; a list used only for names may leave it out)."""
    from projections.audit.audit import Audit
    from projections.audit.exports import Exports
    from projections.automation.automation import Automation
    from projections.campaigns.campaigns import Campaigns
    from projections.channels.anomalies import ChannelAnomalies
    from projections.conversations.access_log import AccessLog
    from projections.conversations.alerts import Alerts
    from projections.conversations.messages import Messages
    from projections.conversations.search import Search
    from projections.customers.channel_stats import ChannelStats
    from projections.customers.groups import Groups
    from projections.customers.portrait import Portrait
    from projections.customers.privacy import Privacy
    from projections.customers.purchases import Purchases
    from projections.customers.staff import StaffDirectory
    from projections.dashboards.rollups import Dashboards
    from projections.handover.handovers import Handovers
    from projections.orders.orders import Orders
    from projections.promotions.promotions import Promotions
    from projections.segments.segments import Segments
    from projections.settlement.ledger import Ledger
    from projections.settlement.reconciliation import Reconciliation
    from projections.settlement.settlement import Settlement
    from projections.tickets.tickets import Tickets

    return [
        Audit(),
        StaffDirectory(),
        Portrait(),
        ChannelStats(),
        Messages(),
        Alerts(),
        AccessLog(),
        Search(vault),
        Groups(),
        Privacy(),
        Orders(),
        Purchases(),
        Segments(),
        Tickets(),
        Settlement(),
        Ledger(),
        Reconciliation(),
        Exports(),
        Promotions(),
        Dashboards(),
        Handovers(),
        ChannelAnomalies(),
        Automation(),
        Campaigns(),
    ]
