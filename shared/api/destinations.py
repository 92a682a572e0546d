"""The destination check made when an export is created or its destination (or key) changes: create
the filesystem or container if missing, then write, append to and delete a probe file. A failure is
a 400 that says what the customer can do about it."""

from __future__ import annotations

from typing import Any

from shared.api.errors import ApiError
from shared.destinations import DestinationClients
from shared.health.rules import Access, explanation, hints
from shared.model import AuthMethod, Destination, EntraId
from shared.onboarding import CLAIM, claim_command
from shared.outcomes import Cause, WriteFailure

_UNCHECKED = "To create the export before its storage exists, add ?checkDestination=false."
_CODES = {
    Cause.AUTHENTICATION: "DestinationAuthenticationFailed",
    Cause.NOT_FOUND: "DestinationNotFound",
    Cause.PERMISSION_MISSING: "DestinationPermissionMissing",
    Cause.SHARED_KEY_DISABLED: "DestinationSharedKeyDisabled",
    Cause.CONSENT_MISSING: "DestinationConsentMissing",
    Cause.CREDENTIAL_EXPIRED: "DestinationCredentialExpired",
}


def check_destination(
    clients: DestinationClients, destination: Destination, access: Access | None, *, project_id: str
) -> None:
    """Raise a 400 ApiError unless the service can write to the destination, and, with Microsoft Entra
    ID, unless the filesystem or container is claimed for the project. The claim is read first, so that
    nothing is created or written in storage that is not the project's. `access` words the hints for the
    destination's authentication method (the role to assign, the consent link, ...)."""
    try:
        if isinstance(destination.credential, EntraId) and project_id not in clients.claims(destination):
            raise not_claimed(destination, project_id)
        clients.prepare(destination)
        failure = clients.probe_write(destination)
    except WriteFailure as error:
        failure = error
    if failure is not None:
        raise destination_refused(failure, access)


def not_claimed(destination: Destination, project_id: str) -> ApiError:
    """The container's metadata does not name the project: the role may be another customer's."""
    scope = "filesystem" if destination.kind == "adls" else "container"
    command = claim_command(destination, project_id)
    return ApiError(
        400,
        "DestinationNotClaimed",
        f"The {scope} does not name this project in its metadata ({CLAIM}), so the service cannot tell "
        f"that it is yours: its role may have been given by another customer. Someone who may change the "
        f"{scope} claims it for the project once, keeping any other projects it names (comma-separated) "
        f"and any other metadata: {command}",
        target="destination",
        details=[{"code": "Hint", "message": command}],
        innererror={"cause": "not-claimed", "metadata": CLAIM, "command": command},
    )


def destination_refused(failure: WriteFailure, access: Access | None = None) -> ApiError:
    cause = failure.cause.value
    advice = hints(cause, access)
    details: list[dict[str, Any]] = [{"code": "Hint", "message": hint} for hint in advice]
    inner: dict[str, Any] = {}
    if access is not None and access.consent_url and failure.cause is Cause.CONSENT_MISSING:
        inner["adminConsentUrl"] = access.consent_url
    if access is not None and access.role_command and failure.cause is Cause.PERMISSION_MISSING:
        inner["roleAssignment"] = access.role_command
    return ApiError(
        400,
        _CODES.get(failure.cause, "DestinationUnavailable"),
        " ".join(
            part
            for part in (
                f"The service could not write to the destination ({failure}).",
                explanation(cause, access),
                *advice,
                _UNCHECKED if access is None or access.method is not AuthMethod.ENTRA else "",
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
            **inner,
        },
    )
