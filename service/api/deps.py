"""Dependencies shared by the routers, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.api.auth import Owner
from service.config import Settings
from service.sessions import Tenant
from service.store_holder import StoreHolder
from service.stores import SessionStore
from service.stores.base import AsyncUpdates, async_updates


async def get_app_settings(request: Request) -> Settings:
    """The settings the application was created with (``async``: no thread hop per request)."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_store(request: Request) -> SessionStore:
    """The application's session store (opened at startup; ``async``: no thread hop)."""
    holder: StoreHolder = request.app.state.store
    return holder.get()


StoreDep = Annotated[SessionStore, Depends(get_store)]


async def get_async_updates(store: StoreDep) -> AsyncUpdates:
    """The store's awaitable update and history: its own, or its blocking ones in threads."""
    return async_updates(store)


AsyncUpdatesDep = Annotated[AsyncUpdates, Depends(get_async_updates)]


async def get_tenant(owner: Owner, settings: SettingsDep) -> Tenant:
    """The request's owner (its API key's fingerprint) with the session quotas in force."""
    return Tenant(
        owner=owner,
        max_live=settings.max_sessions_per_key,
        max_world_size=settings.max_world_size,
        max_ttl_seconds=settings.max_ttl_seconds,
    )


TenantDep = Annotated[Tenant, Depends(get_tenant)]
