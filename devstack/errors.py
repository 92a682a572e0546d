"""Errors the local tools report to a person: a clear message and a non-zero exit, no traceback."""

from __future__ import annotations


class DevstackError(Exception):
    """Something is wrong with the machine or the command; the message says what to do."""

    exit_code = 1


class PortInUse(DevstackError):
    """A port the local stack needs is taken."""

    exit_code = 3


class NodeMissing(DevstackError):
    """Node.js (needed by Azurite) is not installed or too old."""

    exit_code = 4
