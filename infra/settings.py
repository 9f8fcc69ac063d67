"""The one place that reads the environment. No setting at all = the embedded default."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCRM_", extra="ignore")

    data_dir: Path = Path("./var")
    database_url: str | None = None
    nats_url: str | None = None
    nats_stream: str = "SCRM_EVENTS"
    nats_subject_prefix: str = "scrm"  # subjects: <prefix>.<context>.<EventName>
    master_key: str | None = Field(default=None, repr=False)
    lock_timeout_seconds: int = 5  # PostgreSQL lock_timeout for appends
    min_position_timeout: float = 5.0  # how long a query waits for read-your-writes
    poll_interval: float = 0.02  # embedded projections: SQLite has no LISTEN/NOTIFY
    token_ttl_days: int = 30
    # WeCom (企业微信) callback; all three set = the integration is on.
    wecom_token: str | None = Field(default=None, repr=False)
    wecom_aes_key: str | None = Field(default=None, repr=False)
    wecom_corp_id: str | None = None
    # Official Account (公众号) callback, plain mode.
    oa_token: str | None = Field(default=None, repr=False)
    oa_app_id: str | None = None
    # Order push signatures (infra/orders/signatures.py); unset = those pushes are refused.
    douyin_app_key: str | None = None
    douyin_app_secret: str | None = Field(default=None, repr=False)
    youzan_client_id: str | None = None
    youzan_client_secret: str | None = Field(default=None, repr=False)
    # Order detail APIs (infra/orders/fetchers.py) for pushes that carry only an order id:
    # Douyin order.orderDetail (signed with the app key/secret above), Youzan youzan.trade.get.
    # No access token = such pushes are 422 detail_required. The URLs are settings so tests
    # can point them at a local stand-in.
    douyin_access_token: str | None = Field(default=None, repr=False)
    douyin_api_url: str = "https://openapi-fxg.jinritemai.com"
    youzan_access_token: str | None = Field(default=None, repr=False)
    youzan_api_url: str = "https://open.youzanyun.com"
    # Short: the platforms wait only a few seconds for a push's answer, then retry it.
    order_api_timeout_seconds: float = 3.0
    callback_window_seconds: int = 300  # timestamps further off, or nonces seen within, are 401
    # How often `scrm serve` runs its scheduled processes (due erasures); 0 turns them off
    # (then run `scrm privacy run` from cron instead).
    scheduler_interval_seconds: float = 300.0
    # Keys that sign the store's checkpoints and archive exports (infra/signing.py). Unset =
    # <data dir>/signing, made on first use; production points this at keys it keeps apart.
    signing_key_dir: Path | None = None
    # The sealer signs a checkpoint of the store's hash chain after this many new records,
    # or after this many seconds with anything new (docs/audit.md).
    checkpoint_every: int = 1000
    checkpoint_seconds: float = 60.0

    @field_validator(
        "database_url",
        "nats_url",
        "master_key",
        "wecom_token",
        "wecom_aes_key",
        "wecom_corp_id",
        "oa_token",
        "oa_app_id",
        "douyin_app_key",
        "douyin_app_secret",
        "youzan_client_id",
        "youzan_client_secret",
        "douyin_access_token",
        "youzan_access_token",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    def event_store_env(self) -> dict[str, str]:
        """Renders the eventsourcing environment for the store."""
        # Loaded aggregates stay cached and are fast-forwarded from the store on every get,
        # so a hot channel code is not replayed per scan, and other processes' events count.
        cache = {"AGGREGATE_CACHE_MAXSIZE": "10000", "AGGREGATE_CACHE_FASTFORWARD": "y"}
        return cache | self._store_env()

    def _store_env(self) -> dict[str, str]:
        if self.database_url is None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.data_dir / "events.sqlite3"),
                "SQLITE_LOCK_TIMEOUT": "10",
                "APPLICATION_RECORDER_TOPIC": "infra.event_recorder:SealingSQLiteRecorder",
            }
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(self.database_url)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": str(info.get("dbname", "postgres")),
            "POSTGRES_HOST": str(info.get("host", "127.0.0.1")),
            "POSTGRES_PORT": str(info.get("port", "5432")),
            "POSTGRES_USER": str(info.get("user", "postgres")),
            "POSTGRES_PASSWORD": str(info.get("password", "")),
            "POSTGRES_LOCK_TIMEOUT": str(self.lock_timeout_seconds),
            # Per application (every context has one): several share a server's connections.
            "POSTGRES_POOL_SIZE": "4",
            "POSTGRES_MAX_OVERFLOW": "8",
            "POSTGRES_CONNECT_TIMEOUT": "5",
            # No pre-ping round trip per checkout: the recorder retries on a dropped connection.
            "POSTGRES_PRE_PING": "n",
            # Never the DB-functions insert path: under concurrency it interleaves notification
            # ids, and a follower tailing the log can skip events.
            "POSTGRES_ENABLE_DB_FUNCTIONS": "no",
            # The same locked insert, its rows sent as binary column arrays (see the module).
            "APPLICATION_RECORDER_TOPIC": "infra.event_recorder:ColumnArraysRecorder",
        }
        return env

    def read_db_url(self) -> str:
        """Where read models live: the same PostgreSQL database, or a SQLite file."""
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.data_dir / 'readmodels.sqlite3'}"

    def key_db_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.data_dir / 'keys.sqlite3'}"

    def integrity_db_url(self) -> str:
        """The store's own database: the seals of its records are written beside them, in
        the same transactions (infra/integrity.py)."""
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.data_dir / 'events.sqlite3'}"

    def signing_dir(self) -> Path:
        return self.signing_key_dir or self.data_dir / "signing"

    def master_key_bytes(self) -> bytes:
        """32 bytes. Server mode must configure one; the embedded default makes its own."""
        if self.master_key:
            key = base64.b64decode(self.master_key)
            if len(key) != 32:
                raise ValueError("SCRM_MASTER_KEY must be 32 bytes, base64-encoded")
            return key
        if not self.embedded:
            raise ValueError("SCRM_MASTER_KEY must be set when SCRM_DATABASE_URL is set")
        path = self.data_dir / "master.key"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(base64.b64encode(secrets.token_bytes(32)).decode())
        return base64.b64decode(path.read_text().strip())


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
