"""The onboarding steps on a service that is not set up for Microsoft Entra ID in customers' tenants
(no multi-tenant application: EXPORT_APP_CLIENT_ID empty): the customer is told so in plain words."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from devstack.host import HostOptions, LocalHost
from tests.pane.conftest import sign_in

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHost]:
    """A local host whose service has no multi-tenant application for keyless destinations."""
    options = HostOptions(
        data_dir=tmp_path_factory.mktemp("pane-unset"),
        port=0,
        storage_port=0,
        settings={"EXPORT_APP_CLIENT_ID": ""},
    )
    with LocalHost(options) as running:
        yield running


def test_a_service_without_an_application_for_other_tenants_says_so_instead_of_steps(
    page: Page, host: LocalHost, project: str
) -> None:
    """The API refuses (400 EntraIdNotConfigured): no steps, an alert that says the service is not set
    up for keyless destinations and what to do instead, and the tenant's field is not marked wrong."""
    sign_in(page, host, project)
    page.get_by_role("link", name="New export").click()
    page.get_by_label("Storage account URI").fill("https://contoso.dfs.core.windows.net/")
    page.get_by_label("File system and path").fill("exports/signals/")
    page.get_by_label("Authentication").select_option("entra")
    page.get_by_label("Tenant ID").fill("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
    page.get_by_role("button", name="Show the onboarding steps").click()
    alert = page.locator(".onboarding").get_by_role("alert")
    expect(alert).to_contain_text("not set up for keyless destinations")
    expect(alert).to_contain_text("storage account key or a SAS")
    expect(page.locator("ol.steps")).to_have_count(0)
    expect(page.get_by_label("Tenant ID")).not_to_have_attribute("aria-invalid", "true")
