"""Fixtures for the management pane in a real browser: Debian's Chromium driven by Playwright, against
a local host (the app's functions, Azurite and the ADLS Gen2 emulator) on free ports.

Every page records what a customer would notice went wrong (script errors, Content-Security-Policy
violations) and every request that would leave the host: tests assert there are none.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    Route,
    expect,
    sync_playwright,
)

from devstack.host import LAKE_ACCOUNT, HostOptions, LocalHost
from devstack.producer import LocalTarget
from devstack.sources import BatchPolicy, read_ndjson

CHROMIUM = Path("/usr/bin/chromium")
# Flags that work on machines without a display, a sandbox or a network beyond the registries.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = os.environ.get("PANE_SCREENSHOTS", "")  # a folder: keep the screenshots (docs/pane)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1100, "height": 800}

expect.set_options(timeout=30_000)

# Records each text the pane's live region announces (window.said), as a screen reader would hear it.
LISTEN_TO_LIVE_REGION = """
window.said = [];
document.addEventListener("DOMContentLoaded", () => {
  const region = document.getElementById("announcer");
  if (!region) return;
  new MutationObserver(() => {
    if (region.textContent) window.said.push(region.textContent);
  }).observe(region, { childList: true, characterData: true, subtree: true });
});
"""


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHost]:
    """A local host for the module, on free ports, with batches cut fast and the queue polled often."""
    options = HostOptions(
        data_dir=tmp_path_factory.mktemp("pane-data"),
        port=0,
        storage_port=0,
        partitions=2,
        batch=BatchPolicy(max_batch_size=512, min_batch_size=1, max_wait=0.2),
        queue_polling=0.3,
    )
    with LocalHost(options) as running:
        yield running


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Module-scoped: Playwright's synchronous API holds the thread's event loop while it runs, so it
    must be stopped before other modules' tests (asyncio.run in tests/api) run in the same worker."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium (scripts/test installs it); Playwright's own browser download is not used."""
    assert CHROMIUM.exists(), (
        "Debian's chromium is missing: scripts/test installs it (apt-get install chromium), or install it"
    )
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
    yield launched
    launched.close()


@dataclass
class Watch:
    """What went wrong in the browser: script errors, CSP violations, requests to other hosts."""

    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.foreign == [], self.foreign


@pytest.fixture
def watch() -> Watch:
    return Watch()


def context_for(browser: Browser, origin: str, watch: Watch, **options: Any) -> BrowserContext:
    """A fresh context (no cookies, no storage) whose requests may go to `origin` only: any other is
    refused before it leaves the machine, and recorded."""
    context = browser.new_context(viewport=options.pop("viewport", DESKTOP), **options)

    def guard(route: Route, request: Request) -> None:
        if request.url.startswith(origin + "/"):
            route.continue_()
        else:
            watch.foreign.append(request.url)
            route.abort()

    context.route("**/*", guard)
    context.add_init_script(LISTEN_TO_LIVE_REGION)

    def on_console(message: ConsoleMessage) -> None:
        # Chrome logs each 4xx answer as an error; the API's refusals are expected in these tests.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            watch.errors.append(message.text)

    context.on("console", on_console)
    context.on("weberror", lambda error: watch.errors.append(str(error.error)))
    return context


@pytest.fixture
def page(browser: Browser, host: LocalHost, watch: Watch) -> Iterator[Page]:
    """A desktop-sized page in a fresh context, checked for errors and foreign requests at the end."""
    context = context_for(browser, host.url, watch)
    yield context.new_page()
    context.close()
    watch.assert_clean()


@pytest.fixture
def project() -> str:
    return f"pane-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def shoot(tmp_path: Path) -> Callable[[Page, str], Path]:
    """Screenshot a page: into PANE_SCREENSHOTS when set (the README's pictures), else the test's tmp."""

    def take(page: Page, name: str) -> Path:
        folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if SCREENSHOTS:  # kept in the repository: a small palette keeps them small
            with Image.open(path) as shot:
                small = shot.convert("RGB").quantize(colors=48, method=Image.Quantize.MEDIANCUT)
            small.save(path, optimize=True)
        return path

    return take


def portal(host: LocalHost) -> str:
    return f"{host.url}/api/portal/"


def sign_in(page: Page, host: LocalHost, project: str, role: str = "contributor") -> None:
    """The development sign-in, as a person does it: the project, the role, the button."""
    page.goto(portal(host))
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_focused()
    page.get_by_label("Project").fill(project)
    page.get_by_label("Role").select_option(role)
    page.get_by_role("button", name="Sign in", exact=True).click()


def told(page: Page, words: str) -> None:
    """Wait until the live region has told screen readers these words (recorded by the conftest)."""
    page.wait_for_function("words => window.said.some(text => text.includes(words))", arg=words)


def api(host: LocalHost, project: str, role: str = "Write") -> httpx.Client:
    """The management API as another client (a colleague, a script) sees it."""
    token = host.issuer.mint([f"Exports.{role}.{project}"], subject="colleague")
    return httpx.Client(base_url=host.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def lake_export(host: LocalHost, filesystem: str, **body: Any) -> dict[str, Any]:
    """An ADLS Gen2 export's definition on the emulator's account, with its current key."""
    return {
        "destination": {
            "type": "adls",
            "uri": host.lake_url + "/",
            "path": f"{filesystem}/signals/",
            "sharedKey": host.keys[LAKE_ACCOUNT],
        },
        "granularity": "hour",
        "signals": "all",
        **body,
    }


def send_signals(host: LocalHost, project: str, count: int, name: str = "page-view") -> None:
    """Signals of the project onto the local hub, waited for until every partition delivered them."""
    lines = [f'{{"name":"{name}","n":{n},"projectId":"{project}"}}'.encode() for n in range(count)]
    target = LocalTarget(host.url)
    assert target.send(read_ndjson(lines)) == count
    assert target.wait(60)


def run_health_check(host: LocalHost) -> None:
    """The timer function, now (the Functions host's admin route)."""
    response = httpx.post(f"{host.url}/admin/functions/check_health", timeout=60)
    assert response.status_code == 202, response.text
