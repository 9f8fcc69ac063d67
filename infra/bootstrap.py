"""The composition root: builds the store, vault, read models and runners from Settings.

Tests build a Container from their own Settings (a temporary data dir, a fresh PostgreSQL
database, a unique stream); nothing is a module-level singleton.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import Notification
from prometheus_client import CollectorRegistry, Counter

from domain.automation.application import AutomationApp
from domain.campaigns.application import CampaignsApp
from domain.channels.application import ChannelsApp
from domain.conversations.application import ConversationsApp
from domain.customers.application import CustomersApp
from domain.handover.application import HandoverApp
from domain.orders.application import OrdersApp
from domain.ports import OrderDetailFetcher
from domain.pricing.application import PricingApp
from domain.promotions.application import PromotionsApp
from domain.segments.application import SegmentsApp
from domain.settlement.application import SettlementApp
from domain.tickets.application import TicketsApp
from infra import integrity
from infra.automation import Automation
from infra.campaigns import Fission
from infra.channels import AnomalyDetector
from infra.crypto import Vault
from infra.db import Database, schema_lock
from infra.events import EventRecord, to_record
from infra.handover import HandoverFollower, ReadModelDirectory
from infra.integrity import Notary
from infra.listen import pg_waiter
from infra.locks import LocalLocks, PostgresLocks
from infra.nats.consumer import Projector
from infra.nats.relay import Relay
from infra.orders.fetchers import PlatformOrderDetails
from infra.outreach import RecordingOutreachGateway
from infra.processes import LogFollower, ProcessLoop, Rounds
from infra.promotions import Loyalty
from infra.segments import SegmentEvaluator
from infra.settings import Settings
from infra.settlement import Accruer, RecordingPayoutGateway
from infra.signing import SigningKeys
from infra.tickets import MessageRouter
from infra.tokens import TokenIssuer
from infra.wecom.callbacks import ReplayGuard
from infra.wecom.crypto import WecomCrypto
from infra.wecom.directory import ChatDirectory, FanDirectory, NoChatDirectory, NoFanDirectory
from infra.wecom.transfers import RecordingWecomTransfers
from infra.wecom.welcome import RecordingWelcomeSender
from projections import all_projections
from projections.engine import ProjectionEngine
from projections.follower import StoreFollower


@dataclass
class Container:
    settings: Settings
    customers: CustomersApp
    conversations: ConversationsApp
    orders: OrdersApp
    segments: SegmentsApp
    tickets: TicketsApp
    settlement: SettlementApp
    pricing: PricingApp
    promotions: PromotionsApp
    handover: HandoverApp
    channels: ChannelsApp
    automation: AutomationApp
    campaigns: CampaignsApp
    read_db: Database
    key_db: Database
    vault: Vault
    engine: ProjectionEngine
    tokens: TokenIssuer
    registry: CollectorRegistry
    follower: StoreFollower | None = None
    segment_evaluator: SegmentEvaluator | None = None
    message_router: MessageRouter | None = None
    accruer: Accruer | None = None
    loyalty: Loyalty | None = None
    handover_follower: HandoverFollower | None = None
    anomaly_detector: AnomalyDetector | None = None
    automation_process: Automation | None = None
    # Where automation's messages go: a recording gateway (WeCom and the Official Account
    # cannot be reached from here; infra/outreach.py).
    outreach_gateway: RecordingOutreachGateway | None = None
    fission: Fission | None = None
    # Where payouts go: a recording gateway (WeChat Pay cannot be reached from here).
    payout_gateway: RecordingPayoutGateway | None = None
    process_loops: list[ProcessLoop] = field(default_factory=list)
    # The store's seals and signed checkpoints (infra/integrity.py), and the keys that sign.
    integrity_db: Database | None = None
    signing_keys: SigningKeys | None = None
    notary: Notary | None = None
    wecom: WecomCrypto | None = None
    replay_guard: ReplayGuard | None = None
    fan_directory: FanDirectory = field(default_factory=NoFanDirectory)
    chat_directory: ChatDirectory = field(default_factory=NoChatDirectory)
    # Douyin/Youzan order details for id-only pushes; None = such pushes are detail_required.
    order_details: OrderDetailFetcher | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    # --- the log -----------------------------------------------------------------------

    def read_log(self, after: int, limit: int) -> list[EventRecord]:
        """Records after a position, in log order, as every projection and the relay see them."""
        app = self.customers
        notifications = app.recorder.select_notifications(start=after + 1, limit=limit)
        return [to_record(n, app.mapper) for n in notifications]

    def log_batches(self, batch: int = 1000, after: int = 0) -> Iterator[list[EventRecord]]:
        while True:
            records = self.read_log(after, batch)
            if not records:
                return
            yield records
            after = records[-1].position

    def stored(self, after: int, limit: int) -> Sequence[Notification]:
        """Records after a position exactly as stored (no decoding): what the seals cover."""
        return self.customers.recorder.select_notifications(start=after + 1, limit=limit)

    def verify_store(
        self, progress: Callable[[int], None] | None = None, max_findings: int = 50
    ) -> integrity.Report:
        assert self.integrity_db is not None and self.signing_keys is not None
        return integrity.verify(
            self.integrity_db,
            self.stored,
            self.signing_keys.trusted(),
            progress=progress,
            max_findings=max_findings,
        )

    def head(self) -> int:
        return self.customers.recorder.max_notification_id() or 0

    @property
    def in_process_projections(self) -> bool:
        """No bus configured: the API process keeps read models current itself."""
        return self.settings.nats_url is None

    def start_follower(self) -> StoreFollower:
        if self.follower is None:
            self.follower = StoreFollower(
                self.engine, self.read_log, interval=self.settings.poll_interval
            )
            self.follower.start()
        return self.follower

    def log_followers(self) -> list[tuple[str, LogFollower]]:
        """The processes that follow the log behind the read models and record from them,
        by name, in the order their rounds run."""
        found: list[tuple[str, LogFollower | None]] = [
            ("segments", self.segment_evaluator),
            ("routing", self.message_router),
            ("settlement", self.accruer),
            ("loyalty", self.loyalty),
            ("handover", self.handover_follower),
            ("channel-anomalies", self.anomaly_detector),
            ("automation", self.automation_process),
            ("fission", self.fission),
        ]
        return [(name, p) for name, p in found if p is not None]

    def start_log_processes(self) -> list[ProcessLoop]:
        """Run the log followers in this process, each woken after every projection batch,
        and the notary that signs checkpoints of the seals."""
        assert self.notary is not None
        if not self.process_loops:
            processes: list[tuple[str, Rounds]] = [*self.log_followers()]
            for name, process in [*processes, ("checkpoints", self.notary)]:
                loop = ProcessLoop(process, name)
                self.engine.on_applied.append(loop.wake)
                loop.start()
                self.process_loops.append(loop)
        return self.process_loops

    def as_of(self, *models: str) -> dict[str, Any]:
        """What a dashboard states it is as of: every event up to `position` is counted (the
        lowest position of the read models it reads), beside the log's head now."""
        positions = self.engine.positions()
        return {
            "position": min(positions[m] for m in models),
            "head": self.head(),
            "read_models": {m: positions[m] for m in models},
        }

    def projection_lag(self) -> dict[str, dict[str, int]]:
        head = self.head()
        return {
            name: {"position": pos, "lag": max(head - pos, 0)}
            for name, pos in self.engine.positions().items()
        }

    def relay(self) -> Relay:
        s = self.settings
        assert s.nats_url, "the relay needs SCRM_NATS_URL"
        channel = getattr(self.customers.recorder, "channel_name", None)
        waiter = pg_waiter(s.database_url, channel) if s.database_url and channel else None
        with schema_lock(s.database_url):
            return Relay(
                self.read_db,
                self.read_log,
                s.nats_url,
                s.nats_stream,
                s.nats_subject_prefix,
                wait_for_new=waiter,
            )

    def projector(self) -> Projector:
        s = self.settings
        assert s.nats_url, "the projector needs SCRM_NATS_URL"
        with schema_lock(s.database_url):
            return Projector(
                self.read_db,
                self.engine.apply_batch,
                s.nats_url,
                s.nats_stream,
                s.nats_subject_prefix,
                durable=f"{s.nats_stream.lower()}-projector",
            )

    def close(self) -> None:
        if self.follower is not None:
            self.follower.stop()
        for loop in self.process_loops:
            loop.stop()
        if isinstance(self.order_details, PlatformOrderDetails):
            self.order_details.close()
        self.conversations.close()
        self.orders.close()
        self.segments.close()
        self.tickets.close()
        self.settlement.close()
        self.pricing.close()
        self.promotions.close()
        self.handover.close()
        self.channels.close()
        self.automation.close()
        self.campaigns.close()
        self.customers.close()  # last: its infrastructure is the one they share
        if isinstance(self.customers.locks, PostgresLocks):
            self.customers.locks.close()
        self.read_db.close()
        if self.integrity_db is not None and self.integrity_db is not self.read_db:
            self.integrity_db.close()
        if self.key_db is not self.read_db:
            self.key_db.close()


def bootstrap(settings: Settings, projections: Sequence[Any] | None = None) -> Container:
    master = settings.master_key_bytes()
    read_db = Database(settings.read_db_url())
    key_db = (
        read_db
        if settings.key_db_url() == settings.read_db_url()
        else Database(settings.key_db_url())
    )
    locks = PostgresLocks(settings.database_url) if settings.database_url else LocalLocks()
    with schema_lock(settings.database_url):  # every constructor below creates its tables
        vault = Vault(key_db, master)
        # No WeCom API client is shipped: welcomes are recorded, not sent (infra/wecom/welcome.py)
        customers = CustomersApp(
            vault, locks, env=settings.event_store_env(), welcome_sender=RecordingWelcomeSender()
        )
        conversations = ConversationsApp(
            vault, env=settings.event_store_env(), share_with=customers
        )
        orders = OrdersApp(vault, env=settings.event_store_env(), share_with=customers)
        segments = SegmentsApp(env=settings.event_store_env(), share_with=customers)
        tickets = TicketsApp(vault, env=settings.event_store_env(), share_with=customers)
        settlement = SettlementApp(vault, env=settings.event_store_env(), share_with=customers)
        pricing = PricingApp(env=settings.event_store_env(), share_with=customers)
        promotions = PromotionsApp(env=settings.event_store_env(), share_with=customers)
        # No WeCom API client is shipped: transfers are recorded (infra/wecom/transfers.py)
        handover = HandoverApp(
            RecordingWecomTransfers(),
            ReadModelDirectory(read_db),
            tickets.workflow,
            env=settings.event_store_env(),
            share_with=customers,
        )
        channels = ChannelsApp(env=settings.event_store_env(), share_with=customers)
        automation = AutomationApp(env=settings.event_store_env(), share_with=customers)
        campaigns = CampaignsApp(vault, env=settings.event_store_env(), share_with=customers)
        chosen = list(projections or all_projections(vault))
        for projection in chosen:
            projection.bind(vault)
        engine = ProjectionEngine(read_db, chosen)
        guard = ReplayGuard(read_db, settings.callback_window_seconds)
    registry = CollectorRegistry()
    appended = Counter("scrm_events_appended", "Events appended by this process", registry=registry)
    customers.on_recorded.append(appended.inc)
    conversations.on_recorded.append(appended.inc)
    orders.on_recorded.append(appended.inc)
    segments.on_recorded.append(appended.inc)
    tickets.on_recorded.append(appended.inc)
    settlement.on_recorded.append(appended.inc)
    pricing.on_recorded.append(appended.inc)
    promotions.on_recorded.append(appended.inc)
    handover.on_recorded.append(appended.inc)
    channels.on_recorded.append(appended.inc)
    automation.on_recorded.append(appended.inc)
    campaigns.on_recorded.append(appended.inc)
    wecom = None
    if settings.wecom_token and settings.wecom_aes_key and settings.wecom_corp_id:
        wecom = WecomCrypto(settings.wecom_token, settings.wecom_aes_key, settings.wecom_corp_id)
    container = Container(
        wecom=wecom,
        replay_guard=guard,
        settings=settings,
        customers=customers,
        conversations=conversations,
        orders=orders,
        segments=segments,
        tickets=tickets,
        settlement=settlement,
        pricing=pricing,
        promotions=promotions,
        handover=handover,
        channels=channels,
        automation=automation,
        campaigns=campaigns,
        read_db=read_db,
        key_db=key_db,
        vault=vault,
        engine=engine,
        tokens=TokenIssuer(master, settings.token_ttl_days),
        registry=registry,
        order_details=PlatformOrderDetails(settings),
    )
    if engine.stale:  # a read model's shape changed in this version: replay it before use
        with schema_lock(settings.database_url):
            engine.rebuild(engine.still_stale(), container.log_batches())
    with schema_lock(settings.database_url):  # their checkpoint tables
        container.segment_evaluator = SegmentEvaluator(container)
        container.message_router = MessageRouter(container)
        container.accruer = Accruer(container)
        container.loyalty = Loyalty(container)
        container.handover_follower = HandoverFollower(container)
        container.anomaly_detector = AnomalyDetector(container)
        container.automation_process = Automation(container)
        container.outreach_gateway = RecordingOutreachGateway(read_db)
        container.fission = Fission(container)
        container.payout_gateway = RecordingPayoutGateway(read_db)
        container.integrity_db = (
            read_db
            if settings.integrity_db_url() == settings.read_db_url()
            else Database(settings.integrity_db_url())
        )
        integrity.seal_backlog(
            container.integrity_db,
            container.stored,
            customers.recorder.events_table_name,  # type: ignore[attr-defined]
        )
        container.signing_keys = SigningKeys.load(settings.signing_dir())
        container.notary = Notary(
            container.integrity_db,
            container.signing_keys,
            every=settings.checkpoint_every,
            seconds=settings.checkpoint_seconds,
        )
    return container
