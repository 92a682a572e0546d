"""The integration fixtures (customers' storage, exports, traffic), for the contract tests too."""

from __future__ import annotations

from tests.integration.conftest import create_export, customer, traffic

__all__ = ["create_export", "customer", "traffic"]
