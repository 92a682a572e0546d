"""The integration fixtures (customers' storage, exports, traffic, a postponed export), for the
contract tests too."""

from __future__ import annotations

from tests.integration.conftest import create_export, customer, traffic
from tests.integration.test_replay import postponed

__all__ = ["create_export", "customer", "postponed", "traffic"]
