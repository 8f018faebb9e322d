"""The API docs (Swagger UI at /docs, ReDoc at /redoc) in a real headless Chromium, with
every request to anything but the server refused: they load (scripts and styles from the
server itself, under its content security policy) and list the operations. No database
matters here: SQLite only."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser.test_web import open_page, served
from tests.conftest import Instance, write_instance

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from playwright.sync_api import Browser, Request, Route

pytestmark = pytest.mark.browser


def _kitchen(db_url: str, tmp_path: Path) -> Instance:
    instance = write_instance(tmp_path / "instance", db_url, ["kitchen"])
    instance.migrate()
    return instance


@pytest.fixture(scope="module")
def docs_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the module's tests: they only read the docs pages."""
    folder = tmp_path_factory.mktemp("docs")
    with served(_kitchen, f"sqlite:///{folder / 'docs.db'}", folder) as base:
        yield base


@pytest.mark.parametrize(
    ("path", "texts"),
    [
        ("/docs", ["Create many items (all or nothing)", "/api/v1/kitchen/item/{id}/_history"]),
        ("/redoc", ["Create many items (all or nothing)", "The history of a item"]),
    ],
)
@pytest.mark.slow  # Chromium loads Swagger UI and ReDoc (a few MB of scripts) and renders them
def test_the_api_docs_load_with_nothing_but_the_server_reachable(
    chromium: Browser, docs_site: str, screenshots: Path, path: str, texts: list[str]
) -> None:
    base = docs_site
    page = open_page(chromium)
    refused: list[str] = []
    answered: list[str] = []
    errors: list[str] = []

    def only_the_server(route: Route) -> None:
        if route.request.url.startswith(base + "/"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    def finished(request: Request) -> None:
        answered.append(request.url)

    page.route("**/*", only_the_server)
    page.on("requestfinished", finished)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(base + path)
    for text in texts:
        page.get_by_text(text).filter(visible=True).first.wait_for(state="visible")
    page.screenshot(path=str(screenshots / f"api{path.replace('/', '-')}.png"))
    assert refused == []
    assert answered
    assert [url for url in answered if not url.startswith(base + "/")] == []
    assert f"{base}/openapi.json" in answered
    assert errors == []
