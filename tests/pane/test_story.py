"""The seeds' story in a real browser: a customer signs in, creates an ADLS Gen2 export, sees its
signals counted, sees it postponed when the account's key is regenerated (with the key hint), enters
the new key, presses Resume and watches the backlog drain to zero."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from devstack.host import LAKE_ACCOUNT, LocalHost
from tests.pane.conftest import run_health_check, send_signals, sign_in, told

pytestmark = pytest.mark.integration


def test_a_customer_creates_watches_fixes_and_resumes_an_export(
    page: Page, host: LocalHost, project: str, shoot: Callable[[Page, str], Path]
) -> None:
    """Sign in, create, count, postpone with the key hint, new key and Resume, backlog drained to zero."""
    sign_in(page, host, project)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Exports of {project}")
    expect(page.get_by_text("This project has no exports yet.")).to_be_visible()
    page.get_by_role("link", name="New export").click()

    expect(page.get_by_role("heading", name="New export", level=1)).to_be_focused()
    page.get_by_label("Name", exact=True).fill("lake")
    page.get_by_label("Azure Data Lake Storage Gen2").check()
    page.get_by_label("Storage account URI").fill(host.lake_url + "/")
    expect(page.get_by_label("Authentication")).to_have_value("sharedKey")
    page.get_by_label("Storage account key").fill(host.keys[LAKE_ACCOUNT])
    page.get_by_label("File system and path").fill(f"{project}/signals/exports/")
    page.get_by_label("A file per hour").check()
    page.get_by_label("All signals").check()
    shoot(page, "2-create")
    page.get_by_role("button", name="Create export").click()

    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text("lake")
    health = page.locator("#health-section")
    expect(health.locator(".badge")).to_have_text("Active")

    send_signals(host, project, 40)
    run_health_check(host)  # a check with successful writes: the export is healthy
    page.get_by_role("button", name="Refresh").click()
    counters = page.locator("#counters-section")
    expect(
        counters.get_by_text("Signals exported in the last hour").locator("xpath=following-sibling::dd[1]")
    ).to_have_text("40")
    expect(
        counters.get_by_text("Signals exported", exact=True).locator("xpath=following-sibling::dd[1]")
    ).to_have_text("40")
    shoot(page, "3-export-active")

    host.rotate_lake_key()  # the customer regenerates the account's key
    send_signals(host, project, 25)
    run_health_check(host)
    page.get_by_role("button", name="Refresh").click()
    expect(health.locator(".badge")).to_have_text("Postponed")
    expect(health).to_contain_text("The storage account refused the key")
    expect(health.get_by_role("list")).to_contain_text(
        "if it was regenerated, edit the export's destination with the current key"
    )
    backlog = page.locator("#backlog-section")
    expect(backlog).not_to_contain_text("Empty")

    page.get_by_role("link", name=project).click()
    row = page.locator("tr", has=page.get_by_role("link", name="lake"))
    expect(row.locator(".badge")).to_have_text("Postponed")
    expect(row).to_contain_text("The storage account refused the key")
    expect(row.locator('[data-label="Exported in the last hour"]')).to_have_text("40")
    shoot(page, "1-exports")
    page.get_by_role("link", name="lake").click()

    resume = page.get_by_role("region", name="Resume the export")
    resume.get_by_label("Current storage account key").fill(host.keys[LAKE_ACCOUNT])
    shoot(page, "4-resume")
    resume.get_by_role("button", name="Resume").click()
    resumed = "Resumed: the backlog is being written to the destination."
    expect(page.locator("#main").get_by_text(resumed)).to_be_visible()
    told(page, resumed)
    expect(health.locator(".badge")).to_have_text(re.compile(r"^Active"))
    # The page refreshes by itself while the backlog drains: nothing is clicked from here on.
    expect(backlog.locator("dd").first).to_have_text("Empty", timeout=60_000)
    expect(resume).to_be_hidden()
    told(page, "The backlog is replayed: nothing is waiting.")
    shoot(page, "5-drained")
    # The access token lived in the page's memory only: not in the address, nor in the browser's storage.
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    assert "eyJ" not in page.url
