"""lrsched-client: learning-rate schedules from the lrsched service, in a training loop.

``Client``/``AsyncClient`` call the HTTP API (curves, plateau replays, plateau sessions)
with retries; :mod:`lrsched_client.torch` has the PyTorch adapters ``RemoteLR`` and
``RemotePlateau``; ``RemoteEarlyStopping`` and ``RemoteLRFinder`` share early stopping and
the LR range test between ranks (callbacks: :mod:`lrsched_client.hf`,
:mod:`lrsched_client.lightning`). Importing this package imports neither torch nor numpy.
"""

from __future__ import annotations

from lrsched_client._http import Retry
from lrsched_client.client import DEFAULT_URL, AsyncClient, Client
from lrsched_client.errors import (
    AuthError,
    ClientError,
    EpochConflictError,
    LrschedError,
    NotDecidedError,
    NotFoundError,
    ServerError,
    TransportError,
    ValidationError,
)
from lrsched_client.finder import AsyncLrFinder, LrFinder
from lrsched_client.models import (
    FinderResult,
    FinderStep,
    HistoryRow,
    PlateauProgress,
    Replay,
    Report,
    SessionState,
)
from lrsched_client.session import AsyncSession, Session
from lrsched_client.training import RemoteEarlyStopping, RemoteLRFinder

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_URL",
    "AsyncClient",
    "AsyncLrFinder",
    "AsyncSession",
    "AuthError",
    "Client",
    "ClientError",
    "EpochConflictError",
    "FinderResult",
    "FinderStep",
    "HistoryRow",
    "LrFinder",
    "LrschedError",
    "NotDecidedError",
    "NotFoundError",
    "PlateauProgress",
    "RemoteEarlyStopping",
    "RemoteLRFinder",
    "Replay",
    "Report",
    "Retry",
    "ServerError",
    "Session",
    "SessionState",
    "TransportError",
    "ValidationError",
    "__version__",
]
