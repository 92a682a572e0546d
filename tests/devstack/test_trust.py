"""The local CA is trusted by the service's SDKs whatever CA bundle the machine names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devstack.host import CA_BUNDLE, environment
from devstack.local_tls import LocalTls


def test_a_bundle_the_machine_names_keeps_its_cas_and_gains_the_local_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With REQUESTS_CA_BUNDLE already set (as on many machines), the host replaces it with a bundle
    of the machine's CAs followed by the local CA, and puts the machine's back when it stops."""
    machine = tmp_path / "machine.pem"
    machine.write_text("-----BEGIN CERTIFICATE-----\nMACHINE\n-----END CERTIFICATE-----\n")
    monkeypatch.setenv(CA_BUNDLE, str(machine))
    tls = LocalTls.ensure(tmp_path / "tls")
    bundle = tls.bundle_with(machine)
    text = bundle.read_text()
    assert text.startswith(machine.read_text()) and text.rstrip().endswith(tls.ca_file.read_text().rstrip())
    with environment({CA_BUNDLE: str(bundle), "EVENTHUB_NAME": "x"}, replace=(CA_BUNDLE,)) as values:
        assert os.environ[CA_BUNDLE] == str(bundle) == values[CA_BUNDLE]
    assert os.environ[CA_BUNDLE] == str(machine)
    with environment({CA_BUNDLE: str(bundle)}):  # without `replace`, the environment wins
        assert os.environ[CA_BUNDLE] == str(machine)
