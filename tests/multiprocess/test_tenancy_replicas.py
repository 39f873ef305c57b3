"""Tenancy through two ``python -m service`` replicas on one store (SQLite file or Redis).

The live-session quota of an API key is one count shared by every replica: concurrent
creates through both stop exactly at the limit, a delete through one frees a place for the
other, and a session created through one replica is a 404 for another key through either.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.multiprocess.conftest import Service, Services

KEY_A, KEY_B = "tenant-a-5d1f", "tenant-b-9c2e"
QUOTA = 5
CREATES = 16
PLATEAU = {"type": "ReduceLROnPlateau", "patience": 1}


def _create(client: httpx.Client, replica: Service, key: str) -> httpx.Response:
    return client.post(
        f"{replica.url}/v1/sessions",
        json={"schedule": PLATEAU, "lr": 0.1},
        headers={"X-API-Key": key},
    )


def _headers(key: str, token: str) -> dict[str, str]:
    return {"X-API-Key": key, "Authorization": f"Bearer {token}"}


def test_two_replicas_share_each_keys_quota_and_hide_sessions_from_other_keys(
    services: Services, store_url: str
) -> None:
    env = {"LRSCHED_API_KEYS": f"{KEY_A},{KEY_B}", "LRSCHED_MAX_SESSIONS_PER_KEY": str(QUOTA)}
    replicas = [services.start(store_url, env=env), services.start(store_url, env=env)]
    with httpx.Client(timeout=30.0) as client:
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda n: _create(client, replicas[n % 2], KEY_A), range(CREATES))
            )
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [201] * QUOTA + [429] * (CREATES - QUOTA), [a.text for a in answers]
        refused = next(answer for answer in answers if answer.status_code == 429)
        assert refused.json()["detail"]["setting"] == "LRSCHED_MAX_SESSIONS_PER_KEY"

        created = [answer.json() for answer in answers if answer.status_code == 201]
        first = created[0]
        report = {"epoch": 0, "metric": 1.0}
        for replica in replicas:
            url = f"{replica.url}/v1/sessions/{first['id']}"
            stranger, owner = _headers(KEY_B, first["token"]), _headers(KEY_A, first["token"])
            assert client.post(f"{url}/reports", json=report, headers=stranger).status_code == 404
            assert client.get(url, headers=stranger).status_code == 404
            assert client.get(url, headers=owner).json()["epoch"] == 0
        assert _create(client, replicas[1], KEY_B).status_code == 201  # its own quota

        deleted = client.delete(
            f"{replicas[1].url}/v1/sessions/{first['id']}", headers=_headers(KEY_A, first["token"])
        )
        assert deleted.status_code == 204
        assert _create(client, replicas[0], KEY_A).status_code == 201
        assert _create(client, replicas[1], KEY_A).status_code == 429
