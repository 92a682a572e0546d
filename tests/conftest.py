"""Fixtures: real local storage (Azurite, the ADLS Gen2 emulator) started by the test run itself."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import Phase, settings
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from devstack.azurite import ACCOUNT, KEY, Azurite
from shared import telemetry
from shared.destinations import set_testing
from shared.runtime import Runtime, use_runtime
from shared.settings import Settings

# Customers' storage accounts, separate from the service's own (devstoreaccount1).
BLOB_CUSTOMER = "customerblob"
BLOB_CUSTOMER_KEY = base64.b64encode(b"customer blob account key 0001 xx").decode()
LAKE_CUSTOMER = "customerlake"
LAKE_CUSTOMER_KEY = base64.b64encode(b"customer lake account key 0001 xx").decode()
SERVICE_KEY = base64.b64encode(b"k" * 32).decode()

# Property tests: a fixed budget by default (CI); `HYPOTHESIS_PROFILE=fuzz FUZZ_EXAMPLES=200000` for a
# long run. No deadline: the machine's two cores are shared, and a slow example is not a failure.
settings.register_profile("ci", max_examples=300, deadline=None)
settings.register_profile("fuzz", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200000")), deadline=None)
# scripts/mutation: fewer examples, the same ones every run (a surviving mutant stays reproducible),
# and no shrinking: a failure is all a mutant needs, not its smallest example.
settings.register_profile(
    "mutation",
    max_examples=100,
    derandomize=True,
    deadline=None,
    phases=[phase for phase in Phase if phase not in (Phase.shrink, Phase.explain)],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True, scope="session")
def _no_backoff() -> Iterator[None]:
    """Retries keep their attempts but do not sleep between them."""
    set_testing(True)
    yield
    set_testing(False)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """One Azurite for the session: blob, queue and table, with a customer account beside ours."""
    location = Path(tmp_path_factory.mktemp("azurite"))
    with Azurite(location=location, accounts={ACCOUNT: KEY, BLOB_CUSTOMER: BLOB_CUSTOMER_KEY}) as running:
        yield running


@pytest.fixture(scope="session")
def lake() -> Iterator[object]:
    """The ADLS Gen2 emulator, with a customer account."""
    from devstack.adls_emulator import AdlsEmulator

    emulator = AdlsEmulator(accounts={LAKE_CUSTOMER: LAKE_CUSTOMER_KEY}).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def hub() -> str:
    """A hub name of the test's own, so its ledger and dead letters are apart from other tests'."""
    return f"hub{uuid.uuid4().hex[:10]}"


@pytest.fixture
def service(azurite: Azurite, hub: str) -> Iterator[Runtime]:
    """The service's runtime on Azurite, installed as the one the functions use."""
    settings = Settings(
        storage_connection=azurite.connection_string(),
        eventhub_name=hub,
        key_encryption_key=SERVICE_KEY,
        export_cache_seconds=30.0,
        write_deadline_seconds=5.0,
        allowed_storage_suffixes=(".core.windows.net", "127.0.0.1"),
    )
    runtime = Runtime(settings)
    runtime.provision()
    use_runtime(runtime)
    yield runtime
    use_runtime(None)


@pytest.fixture
def project() -> str:
    return f"proj-{uuid.uuid4().hex[:8]}"


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("AZURE_FUNCTIONS_ENVIRONMENT", "Test")


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    """An in-memory meter provider that telemetry records into for the test (the metric tests')."""
    memory = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[memory])
    telemetry.use_meter_provider(provider)
    yield memory
    telemetry.use_meter_provider(None)
    provider.shutdown()
