"""Service settings, read once at start from the environment (prefix ``LRSCHED_``)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.limits import MAX_RANKS, MAX_SESSION_TTL_SECONDS


class Settings(BaseSettings):
    """Every tunable of the service. Field names map to ``LRSCHED_<NAME>`` variables."""

    model_config = SettingsConfigDict(env_prefix="LRSCHED_", env_ignore_empty=True, extra="ignore")

    host: str = "127.0.0.1"
    """Interface ``python -m service`` binds to."""
    port: int = Field(default=8000, ge=0, le=65535)
    """TCP port ``python -m service`` listens on."""
    store: str = "sqlite:///lrsched.db"
    """Where plateau sessions live: ``sqlite:///path``, ``redis://host:port/db`` or ``memory``."""
    max_values: int = Field(default=10_000_000, ge=1)
    """Largest number of values (groups x steps) one request may ask for."""
    cache_bytes: int = Field(default=256 * 1024 * 1024, ge=0)
    """Bytes of encoded curves kept per worker to answer repeated requests (0: no cache)."""
    stream_values: int = Field(default=2_000_000, ge=1)
    """Curves with more values than this are streamed in chunks (and not cached)."""
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    """Largest request body accepted; larger bodies get 413."""
    api_keys: SecretStr = SecretStr("")
    """Comma-separated API keys; when non-empty every ``/v1`` call needs ``X-API-Key``."""
    max_sessions_per_key: int = Field(default=1000, ge=1)
    """Live sessions one API key (or, with keys off, everyone together) may hold; more: 429."""
    max_world_size: int = Field(default=1024, ge=1, le=MAX_RANKS)
    """Largest ``world_size`` a session may be created with; larger: 422."""
    max_ttl_seconds: int = Field(default=30 * 86400, ge=1, le=MAX_SESSION_TTL_SECONDS)
    """Largest ``ttl_seconds`` a session may be created with; larger: 422."""
    metrics_key: SecretStr = SecretStr("")
    """When set, ``/metrics`` needs it as ``Authorization: Bearer`` or ``X-API-Key``."""
    cors_origins: str = ""
    """Comma-separated origins allowed by CORS (``*`` for any); empty: CORS off."""
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    """A request still running after this long is answered 504."""
    workers: int = Field(default=1, ge=1)
    """uvicorn worker processes started by ``python -m service``."""
    limit_concurrency: int = Field(default=256, ge=1)
    """Connections served at once per worker; more are answered 503 by uvicorn."""
    timeout_graceful_shutdown: float = Field(default=20.0, ge=0)
    """Seconds in-flight requests get to finish after SIGTERM."""
    forwarded_allow_ips: str = "127.0.0.1"
    """Proxies whose ``X-Forwarded-*`` headers are trusted (``*`` behind a load balancer)."""
    log_level: str = "INFO"
    """Level of the JSON logs on stderr."""
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    """A connection whose request line and headers are not complete this long after the
    connection opened (or after the request's first byte) is closed."""
    keep_alive_seconds: int = Field(default=5, ge=1)
    """An idle keep-alive connection is closed after this long without a new request."""
    curve_threads: int = Field(default=2, ge=1)
    """Threads per worker computing curves, plots and replays (session calls never use them)."""
    curve_jobs: int = Field(default=16, ge=1)
    """Curve computations admitted at once per worker (running or waiting for a thread);
    more are answered 503 with ``Retry-After``."""
    curve_memory_bytes: int = Field(default=1 << 30, ge=64 << 20)
    """Estimated working memory of the curve computations admitted at once per worker;
    a request that would pass it is answered 503 with ``Retry-After`` (413 if it alone would)."""
    trim_after_idle_seconds: float = Field(default=1.0, ge=0)
    """Freed memory goes back to the kernel once curve work has been idle this long (0: never)."""

    @property
    def api_key_list(self) -> tuple[str, ...]:
        """The configured API keys (none: API keys are not required)."""
        keys = self.api_keys.get_secret_value().split(",")
        return tuple(key.strip() for key in keys if key.strip())

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        """The origins CORS allows (none: CORS is off)."""
        return tuple(o.strip() for o in self.cors_origins.split(",") if o.strip())


def env_name(field: str) -> str:
    """The environment variable that sets the field ``field`` (``LRSCHED_<FIELD>``)."""
    assert field in Settings.model_fields, field
    return f"{Settings.model_config.get('env_prefix', '')}{field}".upper()


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
