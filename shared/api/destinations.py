"""The destination check made when an export is created or its destination (or key) changes: create
the filesystem or container if missing, then write, append to and delete a probe file. A failure is
a 400 that says what the customer can do about it."""

from __future__ import annotations

from typing import Any

from shared.api.errors import ApiError
from shared.destinations import DestinationClients
from shared.health.rules import explanation, hints
from shared.model import Destination
from shared.outcomes import Cause, WriteFailure

_CODES = {
    Cause.AUTHENTICATION: "DestinationAuthenticationFailed",
    Cause.NOT_FOUND: "DestinationNotFound",
}


def check_destination(clients: DestinationClients, destination: Destination) -> None:
    """Raise a 400 ApiError unless the service can write to the destination."""
    try:
        clients.prepare(destination)
        failure = clients.probe_write(destination)
    except WriteFailure as error:
        failure = error
    if failure is not None:
        raise destination_refused(failure)


def destination_refused(failure: WriteFailure) -> ApiError:
    cause = failure.cause.value
    advice = hints(cause)
    details: list[dict[str, Any]] = [{"code": "Hint", "message": hint} for hint in advice]
    return ApiError(
        400,
        _CODES.get(failure.cause, "DestinationUnavailable"),
        " ".join(
            part
            for part in (
                f"The service could not write to the destination ({failure}).",
                explanation(cause),
                *advice,
                "To create the export before its storage exists, add ?checkDestination=false.",
            )
            if part
        ),
        target="destination",
        details=details,
        innererror={
            "cause": cause,
            "storageErrorCode": failure.code,
            "status": failure.status,
            "hints": advice,
        },
    )
