"""The pane in a real browser, beyond the story: what a reader sees, errors at their fields, an edit
that lost a race, markup in names, a phone-sized window, and the keyboard."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from devstack.host import LocalHost
from tests.pane.conftest import PHONE, Watch, api, context_for, lake_export, portal, sign_in, told

pytestmark = pytest.mark.integration

EDIT_CONTROLS = ("New export", "Edit settings", "Resume", "Disable", "Enable", "Delete export")


def create(host: LocalHost, project: str, export_id: str, **body: object) -> None:
    with api(host, project) as client:
        response = client.put(
            f"/projects/{project}/exports/{export_id}",
            json=lake_export(host, f"{project}-{export_id}", **body),
        )
        assert response.status_code == 201, response.text


def test_a_reader_sees_the_exports_but_no_control_that_changes_them(
    browser: Browser, host: LocalHost, project: str, watch: Watch, shoot: Callable[[Page, str], Path]
) -> None:
    """A reader, on a phone-sized window: the list and the export's page, with no edit control at all,
    and nothing wider than the screen."""
    create(host, project, "lake")
    context = context_for(browser, host.url, watch, viewport=PHONE)
    page = context.new_page()
    sign_in(page, host, project, role="reader")
    expect(page.get_by_role("link", name="lake")).to_be_visible()
    expect(page.locator("tr", has=page.get_by_role("link", name="lake")).locator(".badge")).to_have_text(
        "Active"
    )
    for name in EDIT_CONTROLS:
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
        expect(page.get_by_role("link", name=name, exact=True)).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shoot(page, "6-reader-phone")

    page.get_by_role("link", name="lake").click()
    expect(page.get_by_role("heading", name="lake", level=1)).to_be_focused()
    expect(page.get_by_role("heading", name="Health", level=2)).to_be_visible()
    expect(page.locator("#counters-section dd").first).to_have_text("0")
    for name in EDIT_CONTROLS:
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
        expect(page.get_by_role("link", name=name, exact=True)).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.goto(portal(host) + f"#/p/{project}/e/lake/edit")
    expect(page.get_by_text("You can read this project's exports but not change them")).to_be_visible()
    expect(page.get_by_role("button", name="Save changes")).to_have_count(0)
    context.close()
    watch.assert_clean()


def test_each_validation_error_is_shown_beside_its_field(
    page: Page, host: LocalHost, project: str, shoot: Callable[[Page, str], Path]
) -> None:
    """The API's errors (a path too short, a signal name too long) each beside the field its target
    names, marked invalid, listed in a focused summary; the field shown right keeps no error."""
    sign_in(page, host, project)
    page.get_by_role("link", name="New export").click()
    page.get_by_label("Name", exact=True).fill("bad")
    page.get_by_label("Storage account URI").fill(host.lake_url + "/")
    page.get_by_label("Storage account key").fill("a2V5")
    page.get_by_label("File system and path").fill("ab")
    page.get_by_label("Only signals with these names").check()
    page.get_by_label("Signal names").fill("fine\n" + "x" * 300)
    page.get_by_role("button", name="Create export").click()

    summary = page.get_by_role("alert").filter(has_text="problems")
    expect(summary).to_be_focused()
    path = page.get_by_label("File system and path")
    names = page.get_by_label("Signal names")
    expect(path).to_have_attribute("aria-invalid", "true")
    expect(names).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".field", has=path).locator(".error")).to_contain_text("the filesystem name must be")
    expect(page.locator(".field", has=names).locator(".error")).to_contain_text(
        "signals[1]: a signal name is a string of 1 to 256 characters"
    )
    expect(page.get_by_label("Storage account URI")).not_to_have_attribute("aria-invalid", "true")
    shoot(page, "7-validation")

    summary.get_by_role("button").first.click()
    expect(path).to_be_focused()
    with api(host, project) as client:
        assert client.get(f"/projects/{project}/exports/bad").status_code == 404


def test_the_location_option_is_offered_and_a_service_without_a_database_says_so_at_it(
    page: Page, host: LocalHost, project: str
) -> None:
    """The location fields appear only once the option is chosen; this host names no database, so the
    API's LocationDatabaseNotConfigured is shown in the option's group and nothing is created."""
    sign_in(page, host, project)
    page.get_by_role("link", name="New export").click()
    page.get_by_label("Name", exact=True).fill("geo")
    page.get_by_label("Storage account URI").fill(host.lake_url + "/")
    page.get_by_label("Storage account key").fill(base64.b64encode(b"k" * 64).decode())  # well-formed
    page.get_by_label("File system and path").fill("geofs/")
    field = page.get_by_label("Field holding the client's IP address")
    expect(field).to_be_hidden()
    page.get_by_label("Add the location of the client's IP address", exact=False).check()
    expect(field).to_be_visible()
    expect(page.get_by_label("Member the location is added under")).to_have_value("location")
    field.fill("/context/location/ip")
    page.get_by_role("button", name="Create export").click()

    summary = page.get_by_role("alert").filter(has_text="There is a problem")
    expect(summary).to_be_focused()
    group = page.locator("fieldset.group", has=field)
    expect(group.locator(".error").first).to_contain_text("no location database")
    with api(host, project) as client:
        assert client.get(f"/projects/{project}/exports/geo").status_code == 404


def test_an_edit_that_lost_a_race_is_shown_and_overwrites_nothing(
    page: Page, host: LocalHost, project: str, shoot: Callable[[Page, str], Path]
) -> None:
    """A colleague changes the export while the form is open: saving shows the conflict, and the
    colleague's change stays (If-Match with the version the form read)."""
    create(host, project, "lake")
    sign_in(page, host, project)
    page.get_by_role("link", name="lake").click()
    page.get_by_role("link", name="Edit settings").click()
    expect(page.get_by_role("heading", name="Edit lake", level=1)).to_be_focused()
    expect(page.get_by_label("File system and path")).to_have_value(f"{project}-lake/signals/")

    with api(host, project) as client:
        changed = client.patch(
            f"/projects/{project}/exports/lake",
            content=b'{"signals": ["checkout"]}',
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert changed.status_code == 200, changed.text

    page.get_by_label("A file per day").check()
    page.get_by_role("button", name="Save changes").click()
    conflict = page.get_by_role("alert").filter(has_text="Someone else changed this export")
    expect(conflict).to_be_focused()
    expect(conflict).to_contain_text("your changes were not saved")
    expect(page.get_by_label("A file per day")).to_be_checked()  # what was typed stays
    shoot(page, "8-conflict")
    with api(host, project) as client:
        current = client.get(f"/projects/{project}/exports/lake").json()
    assert current["signals"] == ["checkout"] and current["granularity"] == "hour"

    conflict.get_by_role("button", name="Load the current version").click()
    expect(page.get_by_label("Only signals with these names")).to_be_checked()
    expect(page.get_by_label("Signal names")).to_have_value("checkout")


def test_markup_in_names_shows_as_text_and_never_runs(page: Page, host: LocalHost, project: str) -> None:
    """Signal names holding markup and script are shown as the characters they are: no element is
    made from them and no script of theirs runs, on the export's page and in its edit form."""
    names = [
        '<img src=x onerror="window.pwned=1">',
        "<b>bold</b>",
        "</textarea><script>window.pwned=2</script>",
    ]
    create(host, project, "markup", signals=names)
    sign_in(page, host, project)
    page.get_by_role("link", name="markup").click()
    settings = page.locator("#settings-section")
    for name in names:
        expect(settings).to_contain_text(name)
    assert page.locator("main img, main b, main script").count() == 0
    page.get_by_role("link", name="Edit settings").click()
    shown = page.get_by_label("Signal names").input_value().split("\n")
    assert sorted(shown) == sorted(names)
    assert page.locator("main img, main b, main script").count() == 0
    assert page.evaluate("window.pwned") is None


def test_the_pane_works_from_the_keyboard(page: Page, host: LocalHost, project: str) -> None:
    """Sign in, open an export, open and cancel the delete confirmation, with keys only; each page's
    heading takes the focus, and the confirmation says that exported data stays."""
    create(host, project, "lake")
    page.goto(portal(host))
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_focused()
    expect(page.get_by_label("Project")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Project")).to_be_focused()
    page.keyboard.type(project)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Exports of {project}")
    expect(page.get_by_role("heading", level=1)).to_be_focused()
    link = page.get_by_role("link", name="lake")
    link.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="lake", level=1)).to_be_focused()
    delete = page.get_by_role("button", name="Delete export")
    delete.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Delete export lake?")
    expect(dialog).to_contain_text("The data it already exported stays in your storage account")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(delete).to_be_focused()
    with api(host, project) as client:
        assert client.get(f"/projects/{project}/exports/lake").status_code == 200


TENANT = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def test_the_onboarding_steps_of_a_keyless_destination_name_the_tenant_the_project_and_the_destination(
    page: Page, host: LocalHost, project: str
) -> None:
    """Microsoft Entra ID picked in the new export's form, with a tenant and a filesystem: the steps in
    order, the consent link (new tab, no opener) and the claim and role commands naming the tenant, the
    project, the account and the filesystem; announced, and the steps' heading focused. A tenant id
    holding markup is refused beside its field, shown as text and never run."""
    sign_in(page, host, project)
    page.get_by_role("link", name="New export").click()
    show = page.get_by_role("button", name="Show the onboarding steps")
    expect(show).to_be_hidden()
    page.get_by_label("Storage account URI").fill("https://contoso.dfs.core.windows.net/")
    page.get_by_label("File system and path").fill("exports/signals/")
    page.get_by_label("Authentication").select_option("entra")

    markup = '<img src=x onerror="window.pwned=1">'
    page.get_by_label("Tenant ID").fill(markup)
    show.click()
    expect(page.locator("#f-destination-entra-tenantId-error")).to_be_visible()
    expect(page.get_by_label("Tenant ID")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Tenant ID")).to_have_value(markup)
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("window.pwned") is None

    page.get_by_label("Tenant ID").fill(TENANT)
    show.focus()
    page.keyboard.press("Enter")
    heading = page.get_by_role("heading", name=f"Steps for the tenant {TENANT}", level=3)
    expect(heading).to_be_focused()
    expect(page.get_by_label("Tenant ID")).not_to_have_attribute("aria-invalid", "true")
    steps = page.locator("ol.steps > li")
    expect(steps).to_have_count(6)

    app_id = host.settings["EXPORT_APP_CLIENT_ID"]
    consent = steps.nth(0).get_by_role("link")
    href = consent.get_attribute("href") or ""
    assert f"/{TENANT}/adminconsent?" in href and f"client_id={app_id}" in href
    assert consent.get_attribute("target") == "_blank"
    assert "noopener" in (consent.get_attribute("rel") or "").split()
    expect(steps.nth(0)).to_contain_text(TENANT)

    claim = steps.nth(2).get_by_role("group", name="Claim command").locator("code")
    expect(claim).to_have_text(
        "az storage container metadata update --name exports --account-name contoso --auth-mode login "
        f"--metadata signalsexportprojects={project}"
    )
    role = steps.nth(3).get_by_role("group", name="Role assignment command").locator("code")
    expect(role).to_contain_text(f'--assignee "{app_id}"')
    expect(role).to_contain_text("--name contoso")
    expect(role).to_contain_text("/blobServices/default/containers/exports")
    expect(steps.nth(3).get_by_role("button", name="Copy the role assignment command")).to_be_visible()
    steps.nth(3).get_by_text("The same role assignment as a Bicep file").click()
    expect(steps.nth(3).get_by_role("group", name="Bicep file").locator("code")).to_contain_text(
        "name: 'contoso'"
    )
    told(page, "The onboarding steps are shown.")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=host.url)
    steps.nth(2).get_by_role("button", name="Copy the claim command").click()
    told(page, "Claim command copied.")
    assert page.evaluate("navigator.clipboard.readText()") == claim.text_content()

    page.get_by_label("File system and path").fill("other/signals/")
    expect(steps).to_have_count(0)
    expect(page.get_by_text("show the onboarding steps again")).to_be_visible()
    page.get_by_label("Authentication").select_option("sharedKey")
    expect(show).to_be_hidden()
