"""Between the API's documents and the product's nouns (shared.model).

`definition_document` renders an export back into the request form, secrets included: it exists only
so that a merge patch can be applied to it, and must never be logged or answered.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any

from shared.api import rules
from shared.api.etags import to_http
from shared.api.models import (
    AdlsDestinationIn,
    AdlsDestinationOut,
    BlobDestinationIn,
    BlobDestinationOut,
    EntraOut,
    ExportDefinition,
    ExportOut,
    LocationIn,
    LocationOut,
    NotifyOut,
)
from shared.exports import ExportRecord
from shared.model import (
    AdlsDestination,
    BlobDestination,
    Credential,
    Destination,
    EntraId,
    Export,
    Granularity,
    LocationOption,
    SasToken,
    Secret,
)
from shared.onboarding import iso


def destination_of(spec: AdlsDestinationIn | BlobDestinationIn, credential: Credential) -> Destination:
    if isinstance(spec, AdlsDestinationIn):
        url = rules.storage_uri(spec.uri, "adls").url
        filesystem, directory = rules.adls_path(spec.path)
        return AdlsDestination(url, filesystem, directory, credential)
    return BlobDestination(rules.storage_uri(spec.uri, "blob").url, spec.container, credential)


def credential_of(spec: AdlsDestinationIn | BlobDestinationIn) -> Credential | None:
    """The credential a destination document gives (validated: at most one), or None."""
    if spec.sharedKey is not None:
        return Secret(spec.sharedKey)
    if spec.sas is not None:
        return rules.sas_token(spec.sas, spec.type)
    if spec.entra is not None:
        return EntraId(spec.entra.tenantId)
    return None


def export_of(
    definition: ExportDefinition,
    project_id: str,
    export_id: str,
    *,
    credential: Credential,
    webhook_secret: Secret | None,
    current: Export | None,
) -> Export:
    """The export a definition describes; `enabled` and `status` are kept from the current export."""
    export = Export(
        project_id=project_id,
        export_id=export_id,
        destination=destination_of(definition.destination, credential),
        signals=None if definition.signals == "all" else frozenset(definition.signals),
        granularity=definition.granularity or Granularity.HOUR,
        webhook=definition.notify.webhook if definition.notify else None,
        webhook_secret=webhook_secret if definition.notify else None,
        replay_placement=definition.replayPlacement,
        location=location_of(definition.location),
    )
    if current is not None:
        return replace(export, enabled=current.enabled, status=current.status, generation=current.generation)
    return replace(export, generation=secrets.token_hex(8))


def location_of(spec: LocationIn | None) -> LocationOption | None:
    return None if spec is None else LocationOption(spec.ipField, spec.key, spec.anonymize)


def same_account(a: Destination, b: Destination) -> bool:
    """Whether two destinations are on one storage account (a key is only ever sent to its own)."""
    return a.kind == b.kind and a.account_url == b.account_url


def credential_document(credential: Credential) -> dict[str, Any]:
    """The credential as the destination document's property (secrets included: merge patches only)."""
    if isinstance(credential, SasToken):
        return {"sas": credential.token.value}
    if isinstance(credential, EntraId):
        return {"entra": {"tenantId": credential.tenant_id}}
    return {"sharedKey": credential.value}


def definition_document(export: Export) -> dict[str, Any]:
    """The export in the request form, secrets included (for merge patches only)."""
    destination = export.destination
    document: dict[str, Any] = {
        "destination": {"type": destination.kind, "uri": destination.account_url + "/"},
        "signals": "all" if export.signals is None else rules.distinct(export.signals),
        "replayPlacement": export.replay_placement.value,
    }
    if isinstance(destination, AdlsDestination):
        document["destination"]["path"] = _path(destination)
        document["granularity"] = export.granularity.value
    else:
        document["destination"]["container"] = destination.container
    document["destination"].update(credential_document(destination.credential))
    if export.webhook:
        document["notify"] = {"webhook": export.webhook}
        if export.webhook_secret is not None:
            document["notify"]["secret"] = export.webhook_secret.value
    if export.location is not None:
        document["location"] = _location_document(export.location)
    return document


def export_out(record: ExportRecord) -> ExportOut:
    export = record.export
    destination = export.destination
    uri = destination.account_url + "/"
    credential = destination.credential
    authentication: dict[str, Any] = {
        "authentication": destination.method,
        "hasSharedKey": isinstance(credential, Secret) and bool(credential.value),
        "sasExpiresAt": iso(credential.expires_at) if isinstance(credential, SasToken) else None,
        "entra": EntraOut(tenantId=credential.tenant_id) if isinstance(credential, EntraId) else None,
    }
    out_destination: AdlsDestinationOut | BlobDestinationOut
    if isinstance(destination, AdlsDestination):
        out_destination = AdlsDestinationOut(type="adls", uri=uri, path=_path(destination), **authentication)
    else:
        out_destination = BlobDestinationOut(
            type="blob", uri=uri, container=destination.container, **authentication
        )
    return ExportOut(
        id=export.export_id,
        projectId=export.project_id,
        destination=out_destination,
        granularity=export.granularity if isinstance(destination, AdlsDestination) else None,
        signals="all" if export.signals is None else rules.distinct(export.signals),
        notify=(
            NotifyOut(webhook=export.webhook, hasSecret=export.webhook_secret is not None)
            if export.webhook
            else None
        ),
        replayPlacement=export.replay_placement,
        location=None if export.location is None else LocationOut(**_location_document(export.location)),
        enabled=export.enabled,
        status=export.status,
        createdAt=record.created_at,
        updatedAt=record.updated_at,
        etag=to_http(record.etag),
    )


def _location_document(option: LocationOption) -> dict[str, Any]:
    return {"ipField": option.ip_field, "key": option.key, "anonymize": option.anonymize}


def _path(destination: AdlsDestination) -> str:
    directory = destination.directory.strip("/")
    return f"{destination.filesystem}/{directory}/" if directory else f"{destination.filesystem}/"
