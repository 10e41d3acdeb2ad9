"""One typed settings object for the whole of tickguard.

Every variable is read from the environment with the prefix ``TICKGUARD_`` (nested parts
joined by ``__``, e.g. ``TICKGUARD_KIS__REST_URL``) or from a ``.env`` file. Secrets are
``SecretStr`` and never printed. A missing or malformed value stops start-up with a
:class:`~tickguard.errors.SettingsError` that names the variable.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tickguard.errors import SettingsError

ENV_PREFIX = "TICKGUARD_"
NESTED = "__"


class AppCredential(BaseModel):
    """One broker app key: the unit of a websocket session (one session per key)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    app_key: SecretStr
    app_secret: SecretStr


class KisSettings(BaseModel):
    env: Literal["real", "paper"] = "real"
    rest_url: str = "https://openapi.koreainvestment.com:9443"
    ws_url: str = "ws://ops.koreainvestment.com:21000/tryitout"
    apps: list[AppCredential] = Field(default_factory=list)
    """App keys; symbols × TRs are sharded across them (41 registrations per session)."""
    max_registrations: int = Field(default=41, ge=1, le=1000)
    custtype: Literal["P", "B"] = "P"
    rest_rate_per_s: float = Field(default=18.0, gt=0)
    """Below KIS's 20/s (real); use 1.5 for paper accounts (2/s)."""


class KiwoomSettings(BaseModel):
    env: Literal["real", "mock"] = "real"
    rest_url: str = "https://api.kiwoom.com"
    ws_url: str = "wss://api.kiwoom.com:10000/api/dostk/websocket"
    apps: list[AppCredential] = Field(default_factory=list)
    max_registrations: int = Field(default=100, ge=1, le=10000)
    """Per-session registration cap: UNCONFIRMED by Kiwoom, hence a setting."""
    rest_rate_per_s: float = Field(default=4.0, gt=0)
    """Kiwoom publishes no number (only error 1700): keep it conservative and configurable."""


class StreamSettings(BaseModel):
    """Supervisor limits: reconnect policy, watchdog, queues."""

    queue_max_events: int = Field(default=10_000, ge=100)
    """The collector's bounded queue; RAM up to ~3 KiB per queued KIS book (10 levels a
    side), ~0.4 KiB per trade: 10,000 is at most ~29 MiB. It is a high-water mark: once a
    stall filled it, the process keeps that memory (pymalloc reuses it, rarely returns it).
    At 50,000 (up to ~85-145 MiB) a soak's collector RSS stepped up with the queue's high
    water during sink stalls. (The steady ~3 MiB/min the soaks also showed whatever the cap
    was the codecs' exchange-time caches, bounded since: ``TIME_CACHE_ENTRIES``.) Past the
    cap readers wait and the socket backs up: nothing is lost."""
    batch_max_events: int = Field(default=2_000, ge=1)
    batch_max_delay_s: float = Field(default=0.05, gt=0)
    stale_after_s: float = Field(default=5.0, gt=0)
    backoff_base_s: float = Field(default=0.25, gt=0)
    backoff_cap_s: float = Field(default=30.0, gt=0)
    backoff_reset_after_s: float = Field(default=2.0, gt=0)
    """Data must flow this long on a connection before the backoff resets. Measured (drill,
    10 min): at 30 s a 3–5 s flap or a silence every 40 s never resets, delays climb to the
    cap and 72 % of trades are missed (silence recovery 26 s); at 2 s, 2.6 % and 0.3 s. The
    breaker, not the backoff, is what stops a flap loop from hammering the broker."""
    breaker_max_reconnects: int = Field(default=20, ge=1)
    breaker_window_s: float = Field(default=60.0, gt=0)
    breaker_cooldown_s: float = Field(default=30.0, gt=0)
    recorder_max_file_bytes: int = Field(default=64 * 1024 * 1024, ge=4096)
    recorder_max_total_bytes: int = Field(default=2 * 1024**3, ge=4096)
    recorder_max_age_s: float = Field(default=7 * 86400, gt=0)


class SinkSettings(BaseModel):
    """Redis Streams hand-off, disk spool and persist."""

    stream_prefix: str = "tickguard"
    consumer_group: str = "persist"
    spool_max_bytes: int = Field(default=1024**3, ge=4096)
    spool_segment_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    persist_read_count: int = Field(default=16, ge=1)
    """Entries per XREADGROUP = per transaction (~32k trades); measured best with 2 writers."""
    persist_block_ms: int = Field(default=500, ge=1)
    persist_claim_idle_ms: int = Field(default=30_000, ge=0)
    persist_writers: int = Field(default=2, ge=1, le=16)
    """Reads committed concurrently by one persist (own connection each): the INSERT … ON
    CONFLICT runs in the server, so two writers use two cores."""
    trim_interval_s: float = Field(default=10.0, gt=0)


class SlackSettings(BaseModel):
    webhook_url: SecretStr | None = None
    bot_token: SecretStr | None = None
    channel: str = "#market-data"
    base_url: str | None = None
    """Slack Web API base URL override (tests point it at a local fake)."""


class MetricsSettings(BaseModel):
    """Prometheus endpoints of the long-running processes (tickguard.metrics)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    """Loopback by default; a container sets 0.0.0.0 so Prometheus can scrape it."""
    collector_port: int = Field(default=9401, ge=0, le=65535)
    """KIS collector process (0: an ephemeral port, tests)."""
    persist_port: int = Field(default=9402, ge=0, le=65535)
    kiwoom_collector_port: int = Field(default=9403, ge=0, le=65535)
    """Kiwoom's collector runs as its own process on the same host: its own port."""


class PreflightSettings(BaseModel):
    """Thresholds of the market-open preflight (tickguard.preflight)."""

    timeout_s: float = Field(default=8.0, gt=0)
    """Every check runs concurrently under this deadline (the whole target is 10 s)."""
    import_timeout_s: float = Field(default=20.0, gt=0)
    """The entrypoint check imports Prefect in a child interpreter: the slowest check on a
    loaded host (measured 4 s CPU), hence its own deadline."""
    disk_min_free_bytes: int = Field(default=5 * 1024**3, ge=0)
    """Below this on the data directory's filesystem: no-go."""
    day_bytes_per_subscription: int = Field(default=150 * 1024**2, ge=0)
    """Projected disk use of one (symbol, channel) for a day (raw recorder + spool margin)."""
    memory_required_bytes: int = Field(default=2 * 1024**3, ge=0)
    """Collectors' and persist's memory limits together; less available: no-go."""
    cpu_load_warn: float = Field(default=0.8, gt=0)
    """1-minute load average per core above this: degraded."""
    clock_skew_warn_s: float = Field(default=2.0, gt=0)
    clock_skew_fail_s: float = Field(default=10.0, gt=0)
    persist_lag_warn: int = Field(default=1000, ge=0)
    """Stream entries not yet stored by persist above this: degraded."""
    token_reissue_min_s: float = Field(default=60.0, ge=0)
    """Never ask a broker for a token more often (KIS EGW00133: one per minute)."""


class StackSettings(BaseModel):
    """The embedded PostgreSQL and Valkey run under ``data_dir`` when no URL is set."""

    host: str = "127.0.0.1"
    pg_port: int = Field(default=54329, ge=1, le=65535)
    valkey_port: int = Field(default=63799, ge=1, le=65535)
    start_timeout_s: float = Field(default=60.0, gt=0)
    stop_timeout_s: float = Field(default=30.0, gt=0)
    valkey_maxmemory: str = Field(default="1gb", pattern=r"^[0-9]+(kb|mb|gb)?$")
    """With noeviction a full Valkey refuses writes (the sink spools) instead of dropping."""
    pg_privilege: Literal["auto", "userns", "setpriv"] = "auto"
    """How PostgreSQL drops root: a user namespace, or setpriv to ``pg_system_user``."""
    pg_system_user: str = "nobody"


class OrchestrationSettings(BaseModel):
    """Prefect supervision of the long-running collectors (see tickguard.orchestration)."""

    heartbeat_s: int = Field(default=30, ge=30)
    """PREFECT_FLOWS_HEARTBEAT_FREQUENCY for flow runs; Prefect's minimum is 30."""
    liveness_interval_s: float = Field(default=15.0, gt=0)
    """How often a collector emits its data-plane liveness event."""
    restart_max: int = Field(default=3, ge=0)
    """At most this many restarts of a collector deployment within ``restart_window_min``."""
    restart_window_min: float = Field(default=30.0, gt=0)
    restart_delay_base_s: float = Field(default=5.0, ge=0)
    """Delay before the n-th restart collects: base * 2**(n-1), capped."""
    restart_delay_cap_s: float = Field(default=120.0, ge=0)
    session_end_override: datetime | None = None
    """Simulated markets and demos: ignore the XKRX calendar and collect until this instant."""
    persist_drain_min: float = Field(default=15.0, ge=0)
    """persist keeps running this long after the session's close to drain the stream."""
    server_port: int = Field(default=4200, ge=1, le=65535)
    """Port of the Prefect server ``tickguard up`` starts when PREFECT_API_URL is unset."""
    prefect_database: str = Field(default="prefect", pattern=r"^[a-z_][a-z0-9_]*$")
    """Database of that server, on the same PostgreSQL as tickguard's own."""


class QualitySettings(BaseModel):
    """Completeness checks, the gap ledger and Slack incidents (tickguard.quality)."""

    empty_minutes: int = Field(default=5, ge=1)
    """A liquid symbol's gap opens after this many consecutive expected-but-empty minutes."""
    false_alarm_rate: float = Field(default=0.001, gt=0, lt=1)
    """A less liquid symbol needs a run of empty minutes this unlikely by chance."""
    max_empty_minutes: int = Field(default=60, ge=1)
    """A symbol that would need a longer run than this is not expected minute by minute."""
    lookback_min: int = Field(default=60, ge=5)
    """Minutes of a symbol's recent activity that set its expected trading rate."""
    escalate_after_min: float = Field(default=15.0, gt=0)
    """An incident still open this long in session is escalated (once)."""
    prefect_ui_url: str = ""
    """Base URL of the Prefect UI for run links in Slack (default: PREFECT_UI_URL)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    data_dir: Path = Path("~/.tickguard")
    database_url: SecretStr | None = None
    """postgresql+psycopg://… ; unset → the embedded PostgreSQL under data_dir."""
    redis_url: SecretStr | None = None
    """redis://… ; unset → the embedded Valkey under data_dir."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    work_pool: str = "tickguard"

    kis: KisSettings = Field(default_factory=KisSettings)
    kiwoom: KiwoomSettings = Field(default_factory=KiwoomSettings)
    stream: StreamSettings = Field(default_factory=StreamSettings)
    sink: SinkSettings = Field(default_factory=SinkSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    preflight: PreflightSettings = Field(default_factory=PreflightSettings)
    stack: StackSettings = Field(default_factory=StackSettings)
    orchestration: OrchestrationSettings = Field(default_factory=OrchestrationSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("database_url")
    @classmethod
    def _pg_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("postgresql"):
            raise ValueError("must be a postgresql:// or postgresql+psycopg:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value


def env_name(loc: tuple[int | str, ...]) -> str:
    """The environment variable behind a pydantic error location."""
    parts = [str(p) for p in loc if not isinstance(p, int)]
    return ENV_PREFIX + NESTED.join(parts).upper()


def load_settings(**overrides: Any) -> Settings:
    """Read and validate settings, turning pydantic's error into one that names variables."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{env_name(err['loc'])}: {err['msg']}" for err in exc.errors())
        raise SettingsError(f"invalid settings: {problems}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return load_settings()
