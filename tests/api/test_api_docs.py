"""/docs and /redoc load nothing from outside the service: their assets ship with it."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from service.api_docs import ASSETS
from service.config import Settings
from service.main import create_app


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(Settings(store="memory")))


def _referenced_urls(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ?'([^']+)'""", html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_only_this_origin(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert "://" not in response.text  # no absolute URL: no CDN, no web fonts
    for groups in _referenced_urls(response.text):
        url = next(group for group in groups if group)
        assert url.startswith("/"), url


@pytest.mark.parametrize(
    ("url", "name", "media_type"),
    [
        ("/docs/static/swagger-ui-bundle.js", "swagger-ui-bundle.js", "text/javascript"),
        ("/docs/static/swagger-ui.css", "swagger-ui.css", "text/css"),
        ("/docs/static/redoc.standalone.js", "redoc.standalone.js", "text/javascript"),
        ("/docs/static/favicon.png", "favicon.png", "image/png"),
    ],
)
def test_docs_assets_are_the_installed_distribution_files(
    client: TestClient, url: str, name: str, media_type: str
) -> None:
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert response.content == (ASSETS / name).read_bytes()
    assert response.headers["cache-control"] == "no-cache"  # revalidated, as the playground's


def test_swagger_ui_page_points_at_the_local_bundle_and_the_openapi_document(
    client: TestClient,
) -> None:
    html = client.get("/docs").text
    assert 'src="/docs/static/swagger-ui-bundle.js"' in html
    assert 'href="/docs/static/swagger-ui.css"' in html
    assert "url: '/openapi.json'" in html
    assert b"SwaggerUIBundle" in client.get("/docs/static/swagger-ui-bundle.js").content
