"""Service settings, read once at start from the environment (prefix ``LRSCHED_``)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    """Largest request body accepted; larger bodies get 413."""
    api_keys: str = ""
    """Comma-separated API keys; when non-empty every ``/v1`` call needs ``X-API-Key``."""
    workers: int = Field(default=1, ge=1)
    """uvicorn worker processes started by ``python -m service``."""


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
