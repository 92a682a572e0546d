"""What each API operation does to exports, independent of HTTP: validation beyond the document's
shape, the destination check, conditional writes and the calls into replay and health.

Every change is a read-modify-write conditional on the etag it read, so two concurrent edits never
lose one silently: with If-Match, a change made in between answers 412; without, the operation reads
again and retries once, then answers 409.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from shared.api import convert, rules
from shared.api.destinations import check_destination
from shared.api.errors import (
    ApiError,
    bad_request,
    not_found,
    precondition_failed,
    unreadable,
    validation_error,
)
from shared.api.etags import Preconditions
from shared.api.merge_patch import merge_patch
from shared.api.models import ClaimOut, ExportDefinition, OnboardingIn, OnboardingOut, RoleAssignmentOut
from shared.api.policy import check_storage_uri, check_webhook
from shared.cleanup import ExportCleanup
from shared.destinations import DestinationClients
from shared.exports import ExportNotFound, ExportRecord, Exports, ExportUnreadable, StaleExport
from shared.health.view import HealthView
from shared.model import Credential, Destination, EntraId, Export, ExportStatus, Secret
from shared.onboarding import (
    CLAIM,
    EntraNotConfigured,
    Principal,
    ServiceIdentity,
    claim_command,
    role_assignment,
)
from shared.resume import Resumer, ResumeRefused

log = logging.getLogger("signals_export.api")

_RESUMABLE = {ExportStatus.POSTPONED, ExportStatus.DISABLED}


@dataclass(frozen=True)
class ApiServices:
    """What the API's operations use, built once per process by the composition root."""

    exports: Exports
    destinations: DestinationClients
    resumer: Resumer
    health: HealthView
    cleanup: ExportCleanup
    changed: Callable[[], None]  # tells the export cache (shared.exports.ExportRegistry.invalidate)
    allowed_storage_suffixes: tuple[str, ...]
    allow_private_webhooks: bool
    location_configured: bool
    identity: ServiceIdentity = field(default_factory=ServiceIdentity)  # who it is in Microsoft Entra ID


class ExportOperations:
    """The operations of one request."""

    def __init__(self, services: ApiServices, *, actor: str = "") -> None:
        self._services = services
        self._actor = actor
        self._records = services.exports
        self._checked: set[Destination] = set()

    # reads

    def get(self, project_id: str, export_id: str) -> ExportRecord:
        try:
            record = self._records.find(project_id, export_id)
        except ExportUnreadable:
            raise unreadable() from None
        if record is None:
            raise not_found(project_id, export_id)
        return record

    def list(self, projects: frozenset[str] | None) -> list[ExportRecord]:
        return self._records.records(projects)

    def health(self, project_id: str, export_id: str) -> dict[str, Any]:
        try:
            return self._services.health.of(project_id, export_id)
        except ExportNotFound:
            raise not_found(project_id, export_id) from None

    # changes

    def put(
        self,
        project_id: str,
        export_id: str,
        definition: ExportDefinition,
        pre: Preconditions,
        *,
        check: bool,
    ) -> tuple[ExportRecord, bool]:
        """Create (True) or replace (False) an export."""
        for _ in range(2):
            current = self._records.find(project_id, export_id)
            if current is not None and pre.create_only:
                raise precondition_failed("The export already exists (If-None-Match: *).")
            if pre.if_match is not None and (current is None or not pre.matches(current.etag)):
                raise precondition_failed()
            before = current.export if current else None
            self._check_policy(definition, before)
            export = self._export(
                definition,
                project_id,
                export_id,
                before,
                credential=convert.credential_of(definition.destination),
                keep_secret=True,
            )
            if current is not None and export == current.export:
                return current, False  # nothing changes: no write, the ETag stays
            moved = before is None or export.destination != before.destination
            if moved:
                self._check_destination(export, check=check)
            try:
                if current is None:
                    record = self._records.create(export)
                else:
                    record = self._records.replace(export, etag=current.etag, created_at=current.created_at)
            except (StaleExport, ExportNotFound):
                if pre.conditional:
                    raise precondition_failed() from None
                continue
            self._log("export created" if current is None else "export replaced", record)
            return self._after_change(record, before, resume=moved and check), current is None
        raise _conflict()

    def patch(
        self, project_id: str, export_id: str, patch: dict[str, Any], pre: Preconditions, *, check: bool
    ) -> ExportRecord:
        moved = False

        def change(current: ExportRecord) -> Export | None:
            nonlocal moved
            given = _credential_patch(patch)
            document = convert.definition_document(current.export)
            if given:  # a credential given replaces the current one, whatever its method
                for name in rules.CREDENTIALS:
                    document["destination"].pop(name, None)
            document = merge_patch(document, patch)
            try:
                definition = ExportDefinition.model_validate(document)
            except ValidationError as error:
                raise validation_error(error.errors(include_input=False, include_url=False)) from None
            self._check_policy(definition, current.export)
            export = self._export(
                definition,
                project_id,
                export_id,
                current.export,
                credential=convert.credential_of(definition.destination) if given else None,
                keep_secret=False,
            )
            moved = export.destination != current.export.destination
            if moved:
                self._check_destination(export, check=check)
            return export

        record, before = self._update(project_id, export_id, pre, change)
        if record is before:
            return record
        self._log("export patched", record)
        return self._after_change(record, before.export, resume=moved and check)

    def set_enabled(self, project_id: str, export_id: str, enabled: bool, pre: Preconditions) -> ExportRecord:
        record, before = self._update(
            project_id, export_id, pre, lambda current: replace(current.export, enabled=enabled)
        )
        if record is not before:
            self._log("export enabled" if enabled else "export disabled", record)
            self._services.changed()
        return record

    def delete(self, project_id: str, export_id: str, pre: Preconditions) -> None:
        try:
            current = self.get(project_id, export_id)
        except ApiError as error:
            if error.code != "ExportUnreadable" or pre.conditional:
                raise
            # A row that cannot be read can still be deleted: the customer's way out of it.
            self._records.delete(project_id, export_id)
            self._services.cleanup.forget(project_id, export_id)
            self._services.changed()
            return
        if not pre.matches(current.etag):
            raise precondition_failed()
        try:
            self._records.delete(project_id, export_id, etag=current.etag if pre.if_match else None)
        except StaleExport:
            raise precondition_failed() from None
        self._services.cleanup.forget(project_id, export_id)  # exported data stays
        self._services.changed()
        self._log("export deleted", current)

    def resume(self, project_id: str, export_id: str, pre: Preconditions) -> tuple[ExportRecord, int]:
        """Check the destination again and replay the backlog; answers the export and the work queued."""
        current = self.get(project_id, export_id)
        if not pre.matches(current.etag):
            raise precondition_failed()
        if not current.export.enabled:
            raise ApiError(
                409,
                "ExportDisabled",
                "The export is disabled: enable it (POST .../enable) instead; it then exports new signals.",
            )
        try:
            result = self._services.resumer.resume(current.export)
        except ResumeRefused as refused:
            log.info("resume refused", extra={**_ids(current.export), "cause": refused.cause})
            raise ApiError(
                409,
                "DestinationStillFailing",
                refused.message,
                target="destination",
                details=[{"code": "Hint", "message": hint} for hint in refused.hints],
                innererror={"cause": refused.cause, "hints": list(refused.hints)},
            ) from None
        self._services.changed()
        record = self.get(project_id, export_id)
        self._log("export resumed", record, work_items=result.work_items)
        return record, result.work_items

    def onboarding(self, project_id: str, spec: OnboardingIn) -> OnboardingOut:
        """What the customer's tenant grants before an export writes there with Microsoft Entra ID: the
        consent (in another tenant than the service's), the role on the filesystem or container, and
        the claim of it for the project."""
        definition = spec.destination
        if definition.entra is None:
            raise bad_request(
                "MissingProperty",
                "destination.entra (with the tenant's id) is required: onboarding is for Microsoft Entra ID.",
                "destination.entra",
            )
        check_storage_uri(definition.uri, definition.type, self._services.allowed_storage_suffixes)
        tenant = definition.entra.tenantId
        principal = self._principal(tenant)
        destination = convert.destination_of(definition, EntraId(tenant))
        assignment = role_assignment(destination, principal)
        consent = self._services.identity.consent_url(tenant) or None
        return OnboardingOut(
            tenantId=tenant,
            applicationClientId=principal.client_id,
            principal=principal.described,
            adminConsentUrl=consent,
            claim=ClaimOut(
                metadata=CLAIM, value=project_id, azCommand=claim_command(destination, project_id)
            ),
            roleAssignment=RoleAssignmentOut(
                role=assignment.role,
                roleDefinitionId=assignment.role_id,
                principalClientId=principal.client_id,
                principalType=principal.kind,
                scope=assignment.scope,
                azCommand=assignment.command,
                bicep=assignment.bicep,
            ),
            steps=onboarding_steps(destination, principal, assignment.command, consent, project_id),
        )

    # helpers

    def _update(
        self,
        project_id: str,
        export_id: str,
        pre: Preconditions,
        change: Callable[[ExportRecord], Export | None],
    ) -> tuple[ExportRecord, ExportRecord]:
        """(new record, record it replaced); the same record twice when nothing changed."""
        for _ in range(2):
            current = self.get(project_id, export_id)
            if not pre.matches(current.etag):
                raise precondition_failed()
            export = change(current)
            if export is None or export == current.export:
                return current, current
            try:
                record = self._records.replace(export, etag=current.etag, created_at=current.created_at)
            except (StaleExport, ExportNotFound):
                if pre.if_match is not None:
                    raise precondition_failed() from None
                continue
            return record, current
        raise _conflict()

    def _export(
        self,
        definition: ExportDefinition,
        project_id: str,
        export_id: str,
        current: Export | None,
        *,
        credential: Credential | None,
        keep_secret: bool,
    ) -> Export:
        """The export a valid definition describes. `credential` is the one the request gave (None:
        keep the current one, which is only allowed on the same storage account); `keep_secret` keeps
        the current webhook secret when the definition gives none (a replace)."""
        target = convert.destination_of(definition.destination, Secret(""))
        if credential is not None:
            chosen = credential
        elif current is not None and convert.same_account(target, current.destination):
            chosen = current.destination.credential
        else:
            raise bad_request(
                "MissingProperty",
                "One of destination.sharedKey, destination.sas or destination.entra is required when an "
                "export is created or its storage account (type or uri) changes.",
                "destination",
            )
        notify = definition.notify
        secret: Secret | None = None
        if notify is not None and notify.secret is not None:
            secret = Secret(notify.secret)
        elif notify is not None and keep_secret and current is not None:
            secret = current.webhook_secret
        return convert.export_of(
            definition, project_id, export_id, credential=chosen, webhook_secret=secret, current=current
        )

    def _check_policy(self, definition: ExportDefinition, current: Export | None) -> None:
        destination = definition.destination
        check_storage_uri(destination.uri, destination.type, self._services.allowed_storage_suffixes)
        if destination.entra is not None:
            self._principal(destination.entra.tenantId)
        option = convert.location_of(definition.location)
        changed = option is not None and (current is None or option != current.location)
        if changed and not self._services.location_configured:  # one set before stays
            raise bad_request(
                "LocationDatabaseNotConfigured",
                "This service has no location database, so it cannot add locations: leave out "
                "`location`, or ask its operator to provide one (LOCATION_DATABASE_BLOB or "
                "LOCATION_DATABASE_PATH).",
                "location",
            )
        notify = definition.notify
        if notify is not None and (current is None or notify.webhook != current.webhook):
            check_webhook(notify.webhook, allow_private=self._services.allow_private_webhooks)

    def _principal(self, tenant: str) -> Principal:
        try:
            return self._services.identity.principal(tenant)
        except EntraNotConfigured as missing:
            raise bad_request("EntraIdNotConfigured", str(missing), "destination.entra") from None

    def _check_destination(self, export: Export, *, check: bool) -> None:
        """The destination check (`check`: the request did not skip it). A Microsoft Entra ID
        destination is always checked: its claim for the project is what makes it the caller's."""
        destination = export.destination
        if not check:
            if isinstance(destination.credential, EntraId):
                raise bad_request(
                    "CheckRequired",
                    "A Microsoft Entra ID destination is always checked (the service must see that the "
                    "filesystem or container is claimed for this project): leave out checkDestination=false.",
                    "checkDestination",
                )
            return
        if destination not in self._checked:
            access = self._services.identity.access(destination)
            check_destination(self._services.destinations, destination, access, project_id=export.project_id)
            self._checked.add(destination)

    def _after_change(self, record: ExportRecord, before: Export | None, *, resume: bool) -> ExportRecord:
        """Make the change visible to this instance's trigger, and resume a postponed export whose
        destination was just fixed (and checked)."""
        self._services.changed()
        if not (resume and before is not None and before.status in _RESUMABLE and record.export.enabled):
            return record
        try:
            result = self._services.resumer.resume(record.export)
        except ResumeRefused as refused:
            log.warning(
                "export not resumed after its destination changed",
                extra={**_ids(record.export), "cause": refused.cause},
            )
            return record
        self._services.changed()
        self._log("export resumed", record, work_items=result.work_items)
        return self._records.find(record.export.project_id, record.export.export_id) or record

    def _log(self, message: str, record: ExportRecord, **fields: Any) -> None:
        export = record.export
        log.info(
            message,
            extra={
                **_ids(export),
                "actor": self._actor,
                "destination_type": export.destination.kind,
                "enabled": export.enabled,
                "status": export.status.value,
                **fields,
            },
        )


def onboarding_steps(
    destination: Destination, principal: Principal, command: str, consent: str | None, project_id: str
) -> list[str]:
    """The onboarding, in order, for the customer's administrator."""
    scope = "filesystem" if destination.kind == "adls" else "container"
    steps = [
        f"Create the {scope} `{destination.scope}` if it does not exist yet: a role is assigned on an "
        f"existing {scope} (`az storage container create --name {destination.scope} --account-name "
        f"{destination.account} --auth-mode login`).",
        f"Claim the {scope} for this project in its metadata {CLAIM} (someone who may change the {scope} "
        f"does it; the service reads it and never sets it). The command replaces the {scope}'s metadata: "
        f"if it has some, or names other projects, give them again (projects comma-separated): "
        f"{claim_command(destination, project_id)}",
        f"Assign the role Storage Blob Data Contributor to {principal.described} on the {scope}: {command}",
        "Wait for the role assignment to take effect (up to about 10 minutes).",
        'Create the export with the destination and {"entra": {"tenantId": "<this tenant id>"}}: the '
        "service checks that it can write before it stores the export.",
    ]
    if consent:
        steps.insert(0, f"An administrator of the tenant consents to the application once: {consent}")
    return steps


def _credential_patch(patch: dict[str, Any]) -> bool:
    """Whether a patch gives the destination a credential; a credential removed (null) without another
    given is refused: an export always has one."""
    destination = patch.get("destination") or {}
    named = [name for name in rules.CREDENTIALS if name in destination]
    given = [name for name in named if destination[name] is not None]
    if named and not given:
        raise bad_request(
            "MissingProperty",
            f"destination.{named[0]} cannot be removed without another method: give destination.sharedKey, "
            "destination.sas or destination.entra instead.",
            f"destination.{named[0]}",
        )
    return bool(given)


def _conflict() -> ApiError:
    return ApiError(
        409,
        "ConcurrentModification",
        "The export was changed by another request at the same time: read it again and retry.",
    )


def _ids(export: Export) -> dict[str, str]:
    return {"project_id": export.project_id, "export_id": export.export_id}
