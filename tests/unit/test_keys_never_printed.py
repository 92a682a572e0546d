"""Customers' keys and webhook secrets are never printed (shared.model.Secret): not by repr, str or a
format, and not through the destination or export that holds them, so that no log line, traceback or
error message can carry one. tests/api/test_secrets.py follows them through the whole API."""

from __future__ import annotations

import logging
import traceback

import pytest

from shared.model import AdlsDestination, BlobDestination, Export, Secret

KEY = "c3RvcmFnZS1hY2NvdW50LWtleS0wMDAx"
HOOK = "whsec-do-not-print-0001"


def test_a_secret_hides_its_value_however_it_is_printed() -> None:
    """repr, str, f-strings and %-formatting all show the same mask; the value is there for the code."""
    secret = Secret(KEY)
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", "%s" % secret, "%r" % (secret,)):  # noqa: UP031
        assert KEY not in text
        assert text == "Secret('***')"
    assert secret.value == KEY


def test_a_destination_or_export_never_prints_its_keys(caplog: pytest.LogCaptureFixture) -> None:
    """An export logged or shown in a traceback shows where it writes, never its key or webhook secret."""
    lake = AdlsDestination("https://acct.dfs.core.windows.net", "fs", "dir", Secret(KEY))
    blob = BlobDestination("https://acct.blob.core.windows.net", "c", Secret(KEY))
    export = Export("p", "e", lake, webhook="https://hooks.example/in", webhook_secret=Secret(HOOK))
    for value in (lake, blob, export):
        assert KEY not in repr(value) and HOOK not in repr(value) and KEY not in str(value)
    assert "acct.dfs.core.windows.net" in repr(export)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("signals_export.test").error("cannot write %s", export)
        try:
            raise RuntimeError(export)
        except RuntimeError:
            logging.getLogger("signals_export.test").exception("failed")
            shown = traceback.format_exc()
    assert KEY not in caplog.text and HOOK not in caplog.text
    assert KEY not in shown and HOOK not in shown
