"""The location database as a blob of the service's storage (Azurite, the real Blob SDK): downloaded to
a temporary file that is removed once open, opened again when the operator uploads a new version (a
new ETag), kept when the blob disappears."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from shared.geo import BlobSource, GeoDatabase, location_database
from shared.location import Outcome, enrich
from shared.model import LocationOption
from shared.runtime import Runtime
from tests.geodata import RENAMED_DATABASE, Clock, write_database

pytestmark = pytest.mark.integration

LINE = b'{"clientIp":"81.2.69.160"}'
OPTION = LocationOption("/clientIp")


def city(database: GeoDatabase) -> str | None:
    enriched, outcome = enrich(LINE, OPTION, database.locator())
    return json.loads(enriched)["location"]["city"] if outcome is Outcome.LOCATED else None


def test_a_blob_database_is_downloaded_opened_and_replaced(service: Runtime, tmp_path: Path) -> None:
    """Upload, locate; upload a new version, located by it after the check; delete the blob, the loaded
    version stays; no temporary file is left behind."""
    container = f"geo{uuid.uuid4().hex[:8]}"
    blobs: BlobServiceClient = service.blobs
    blobs.create_container(container)
    blob = blobs.get_blob_client(container, "GeoLite2-City.mmdb")
    blob.upload_blob(write_database(tmp_path / "v1.mmdb").read_bytes())
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    clock = Clock()
    database = GeoDatabase(BlobSource(blob, str(downloads)), check_every=60, clock=clock)

    assert city(database) == "Sampleton"
    assert database.extension is True
    assert list(downloads.iterdir()) == []

    blob.upload_blob(write_database(tmp_path / "v2.mmdb", RENAMED_DATABASE).read_bytes(), overwrite=True)
    assert city(database) == "Sampleton"  # not checked yet
    clock.now += 60
    assert city(database) == "Renamedton"

    blob.delete_blob()
    clock.now += 60
    assert city(database) == "Renamedton"
    assert list(downloads.iterdir()) == []


def test_a_blob_that_is_not_there_yet_leaves_addresses_anonymised(service: Runtime) -> None:
    """LOCATION_DATABASE_BLOB names a blob not uploaded yet: signals go out anonymised, unlocated."""
    settings = service.settings
    named = location_database(
        type(settings)(
            storage_connection=settings.storage_connection,
            location_database_blob=f"geo{uuid.uuid4().hex[:8]}/missing.mmdb",
        ),
        lambda: service.blobs,
    )
    assert named is not None
    assert enrich(LINE, OPTION, named.locator()) == (b'{"clientIp":"81.2.69.0"}', Outcome.NO_DATABASE)
