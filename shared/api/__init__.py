"""The customer-facing management API of exports (FastAPI). See shared.api.app."""

from shared.api.app import create_api

__all__ = ["create_api"]
