"""Fixtures: one ADLS emulator per test module, SDK clients, a fresh filesystem per test; the keyless
fixtures (local Entra ID, an HTTPS emulator, a customer account per test) come from `keyless.py`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from azure.storage.filedatalake import DataLakeServiceClient, FileSystemClient

from devstack.adls_emulator import DEFAULT_KEY, AdlsEmulator
from tests.emulator.keyless import customer, identity, managed_identity, secure_emulator

__all__ = ["customer", "identity", "managed_identity", "secure_emulator"]


@pytest.fixture(scope="module")
def emulator() -> Iterator[AdlsEmulator]:
    """One in-memory emulator per test module, on a free port."""
    emu = AdlsEmulator().start(host="127.0.0.1", port=0)
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(autouse=True)
def _clean_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    """Faults never leak from one test into the next."""
    yield
    if "emulator" in request.fixturenames:
        request.getfixturevalue("emulator").clear_faults()


@pytest.fixture
def service(emulator: AdlsEmulator) -> Iterator[DataLakeServiceClient]:
    """The real SDK's service client, signed with the default account key."""
    with DataLakeServiceClient(account_url=emulator.url(), credential=DEFAULT_KEY) as client:
        yield client


@pytest.fixture
def no_retry_service(emulator: AdlsEmulator) -> Iterator[DataLakeServiceClient]:
    """A client whose own retries cannot hide an injected fault."""
    with DataLakeServiceClient(account_url=emulator.url(), credential=DEFAULT_KEY, retry_total=0) as client:
        yield client


@pytest.fixture
def filesystem(service: DataLakeServiceClient) -> Iterator[FileSystemClient]:
    """A fresh, uniquely named filesystem, deleted afterwards."""
    fs = service.create_file_system(f"fs-{uuid.uuid4().hex[:16]}")
    try:
        yield fs
    finally:
        if fs.exists():
            fs.delete_file_system()
