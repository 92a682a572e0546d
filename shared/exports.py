"""Exports: what customers configured, in Azure Table Storage. The one repository of that table.

One entity per export: PartitionKey = project id, RowKey = export id, with when the export was created
and last changed by its customer. Customers' keys are sealed (shared.secrets) before they are stored.
Every write that must not lose a concurrent one is conditional: `create` fails if the export exists,
`replace` and `delete` (given an etag) fail if it changed since; both raise StaleExport (412 and 409
are mapped here, once). A row that cannot be read raises ExportUnreadable, for that export only.

The registry (`ExportRegistry`) is the cached view the Event Hub function reads from.
"""

from __future__ import annotations

import builtins
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError, TransactionOperation, UpdateMode

from shared.model import (
    AdlsDestination,
    AuthMethod,
    BlobDestination,
    Credential,
    Destination,
    EntraId,
    Export,
    ExportStatus,
    Granularity,
    LocationOption,
    ReplayPlacement,
    SasToken,
)
from shared.outcomes import STORAGE_ERRORS
from shared.sas import parse as parse_sas
from shared.secrets import KeyBox, SealError

log = logging.getLogger("signals_export.exports")

CREATED = "created_at"
UPDATED = "updated_at"


class ExportNotFound(LookupError):
    """No export with that project and id."""


class StaleExport(Exception):
    """The export changed since it was read (etag mismatch), or exists already (on create)."""


class ExportUnreadable(Exception):
    """A row of the exports table that cannot be read: a key sealed under a service key that was
    dropped, a field of a form this version does not know. Only its own export is affected."""

    def __init__(self, project_id: str, export_id: str, reason: str) -> None:
        super().__init__(f"export {project_id}/{export_id} cannot be read: {reason}")
        self.project_id = project_id
        self.export_id = export_id
        self.reason = reason


@dataclass(frozen=True)
class ExportRecord:
    """One version of an export: the export, its etag, and when it was created and last changed."""

    export: Export
    etag: str
    created_at: datetime
    updated_at: datetime


class Exports:
    """The exports table. Every method is one table request (a list: one per page), and each write is
    followed by `changed(project, export)` (the health check's due index: shared.health.due)."""

    def __init__(
        self,
        table: TableClient,
        keys: KeyBox,
        *,
        clock: Callable[[], float] = time.time,
        changed: Callable[[str, str], None] | None = None,
    ) -> None:
        self._table = table
        self._keys = keys
        self._clock = clock
        self._changed = changed

    # -- reads

    def find(self, project_id: str, export_id: str) -> ExportRecord | None:
        """The export's current version; None when there is none (ExportUnreadable for a bad row)."""
        try:
            entity = self._table.get_entity(project_id, export_id)
        except ResourceNotFoundError:
            return None
        return self._record(entity)

    def get(self, project_id: str, export_id: str) -> tuple[Export, str]:
        """The export and its etag. Raises ExportNotFound, or ExportUnreadable for a row that cannot be
        read."""
        record = self.find(project_id, export_id)
        if record is None:
            raise ExportNotFound(export_id)
        return record.export, record.etag

    def records(self, projects: Collection[str] | None) -> builtins.list[ExportRecord]:
        """The exports of the given projects (None: of every project), by project then id. A row that
        cannot be read is left out (the health check reports it on that export's health)."""
        if projects is None:
            entities: Iterable[Any] = self._table.list_entities()
        else:
            entities = (
                entity
                for project_id in sorted(projects)
                for entity in self._table.query_entities("PartitionKey eq @p", parameters={"p": project_id})
            )
        found: builtins.list[ExportRecord] = []
        for entity in entities:
            try:
                found.append(self._record(entity))
            except ExportUnreadable:
                continue
        return found

    def list(self, project_id: str | None = None) -> builtins.list[Export]:
        """The exports that can be read; a row that cannot is logged and left out (see `scan`)."""
        return self.scan(project_id)[0]

    def scan(
        self, project_id: str | None = None
    ) -> tuple[builtins.list[Export], builtins.list[ExportUnreadable]]:
        """Every export, and every row that cannot be read: one bad row never stops the others."""
        if project_id is None:
            entities: Iterable[Any] = self._table.list_entities()
        else:
            entities = self._table.query_entities("PartitionKey eq @p", parameters={"p": project_id})
        exports: builtins.list[Export] = []
        unreadable: builtins.list[ExportUnreadable] = []
        for entity in entities:
            try:
                exports.append(self._read(entity))
            except ExportUnreadable as error:
                unreadable.append(error)
                log.error(
                    "export row cannot be read; only that export is affected",
                    extra={
                        "project_id": error.project_id,
                        "export_id": error.export_id,
                        "reason": error.reason,
                    },
                )
        return exports, unreadable

    def page(self, token: Any | None, size: int) -> tuple[builtins.list[Any], Any | None]:
        """One page of the table's rows, from where `token` (an earlier page's) says; the rows and the
        token of the next page (None after the last)."""
        pages = self._table.list_entities(results_per_page=size).by_page(continuation_token=token)
        entities = list(next(pages, []))
        return entities, pages.continuation_token  # type: ignore[attr-defined]

    def read_entity(self, entity: Any) -> Export:
        """The export a row holds; ExportUnreadable when it cannot be read."""
        return self._read(entity)

    @property
    def fingerprint(self) -> str:
        """Which service keys seal the rows: it changes when KEY_ENCRYPTION_KEY does."""
        return ",".join(self._keys.key_ids)

    def _read(self, entity: Any) -> Export:
        """`from_entity`, with any failure to read the row turned into ExportUnreadable (the boundary
        of one row: what went wrong is ours or the data's, never the customer's storage)."""
        try:
            return self._from_entity(entity)
        except Exception as error:  # noqa: BLE001  # any defect of one row stays with that row
            project_id, export_id = str(entity.get("PartitionKey", "")), str(entity.get("RowKey", ""))
            reason = (
                str(error) if isinstance(error, SealError) else f"{type(error).__name__} in the stored row"
            )
            raise ExportUnreadable(project_id, export_id, reason) from None

    # -- writes

    def create(self, export: Export) -> ExportRecord:
        """Store a new export (StaleExport if one with its id exists). It gets a generation of its own:
        files of an earlier export of the same id are not its."""
        if not export.generation:
            export = _with_generation(export)
        now = self._now()
        try:
            result = self._table.create_entity(self._entity(export, created=now, updated=now))
        except ResourceExistsError:
            raise StaleExport(f"export {export.export_id} already exists") from None
        self._notify(export.project_id, export.export_id)
        return ExportRecord(export, str(result["etag"]), now, now)

    def create_all(self, exports: Sequence[Export]) -> None:
        """Store new exports at once (a bulk import, the benchmark's thousands): those of one project in
        one entity-group transaction per 100. Raises StaleExport, storing none of its transaction's,
        when one of them exists."""
        now = self._now()
        by_project: dict[str, builtins.list[Export]] = {}
        for export in exports:
            by_project.setdefault(export.project_id, []).append(
                export if export.generation else _with_generation(export)
            )
        for group in by_project.values():
            for start in range(0, len(group), _TRANSACTION):
                chunk = group[start : start + _TRANSACTION]
                operations: builtins.list[Any] = [
                    (TransactionOperation.CREATE, self._entity(export, created=now, updated=now))
                    for export in chunk
                ]
                try:
                    self._table.submit_transaction(operations)
                except TableTransactionError:
                    raise StaleExport(f"an export of project {chunk[0].project_id} already exists") from None
                for export in chunk:
                    self._notify(export.project_id, export.export_id)

    def replace(self, export: Export, *, etag: str, created_at: datetime) -> ExportRecord:
        """Replace the version read with `etag` (StaleExport if it changed, ExportNotFound if it went)."""
        now = self._now()
        try:
            result = self._table.update_entity(
                self._entity(export, created=created_at, updated=now),
                mode=UpdateMode.REPLACE,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceNotFoundError:
            raise ExportNotFound(export.export_id) from None
        except HttpResponseError as error:
            if error.status_code == 412:
                raise StaleExport(f"export {export.export_id} changed since it was read") from None
            raise
        self._notify(export.project_id, export.export_id)
        return ExportRecord(export, str(result["etag"]), created_at, now)

    def put(self, export: Export) -> ExportRecord:
        """Create the export, or replace whatever version is there (tools, tests and benchmarks that
        set an export whole; the API's writes are conditional)."""
        for _ in range(3):
            current = self.find(export.project_id, export.export_id)
            try:
                if current is None:
                    return self.create(export)
                return self.replace(export, etag=current.etag, created_at=current.created_at)
            except (StaleExport, ExportNotFound):
                continue
        raise StaleExport(f"export {export.export_id} kept changing")

    def delete(self, project_id: str, export_id: str, *, etag: str | None = None) -> None:
        """Delete (a missing export is not an error); with an etag, only that version."""
        try:
            if etag is None:
                self._table.delete_entity(project_id, export_id)
            else:
                self._table.delete_entity(
                    project_id, export_id, etag=etag, match_condition=MatchConditions.IfNotModified
                )
        except HttpResponseError as error:
            if error.status_code == 412:
                raise StaleExport(f"export {export_id} changed since it was read") from None
            raise
        self._notify(project_id, export_id)

    def set_status(self, project_id: str, export_id: str, status: ExportStatus, *, cause: str = "") -> None:
        """Change only the health status (merge), leaving the customer's settings and times alone."""
        self._table.update_entity(
            {
                "PartitionKey": project_id,
                "RowKey": export_id,
                "status": status.value,
                "status_cause": cause,
                "status_since": datetime.fromtimestamp(self._clock(), UTC),
            },
            mode=UpdateMode.MERGE,
        )
        self._notify(project_id, export_id)

    def _notify(self, project_id: str, export_id: str) -> None:
        """Tell the health check (after the write: it reads what was written). A failure to tell it
        does not undo the change: it is logged, and the export is judged at its next activity."""
        if self._changed is None:
            return
        try:
            self._changed(project_id, export_id)
        except STORAGE_ERRORS:
            log.warning(
                "export changed but not marked for the health check",
                exc_info=True,
                extra={"project_id": project_id, "export_id": export_id},
            )

    def reseal(self) -> int:
        """Seal again, under the newest service key, every key sealed under an older one (after a
        rotation of KEY_ENCRYPTION_KEY). Only those entities are written, each conditional on the
        version read; returns how many were resealed. (The health check does it a page at a time.)"""
        return sum(
            self.reseal_entity(entity)
            for entity in self._table.list_entities(
                select=["PartitionKey", "RowKey", "auth", "sealed_key", "sealed_webhook_secret"]
            )
        )

    def reseal_entity(self, entity: Any) -> bool:
        """Reseal one row's keys if they are sealed under an older service key (conditional on the
        version read); whether it was written."""
        project_id, export_id = entity["PartitionKey"], entity["RowKey"]
        context = _context(project_id, export_id)
        key_context = _credential_context(context, entity.get("auth"))  # a SAS is bound to its method
        changes: dict[str, Any] = {}
        try:
            for name, where in (("sealed_key", key_context), ("sealed_webhook_secret", context + "/webhook")):
                sealed = entity.get(name)
                if sealed and not self._keys.is_current(sealed):
                    changes[name] = self._keys.seal(self._keys.open(sealed, where), where)
        except SealError:
            return False  # an unreadable row: reported on its own health, never stops the others
        if not changes:
            return False
        try:
            self._table.update_entity(
                {"PartitionKey": project_id, "RowKey": export_id, **changes},
                mode=UpdateMode.MERGE,
                etag=entity.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except HttpResponseError:
            return False  # changed meanwhile: written again under the newest key already, or next time
        return True

    # -- the entity

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _entity(self, export: Export, *, created: datetime, updated: datetime) -> dict[str, Any]:
        entity = self._to_entity(export)
        entity[CREATED] = created
        entity[UPDATED] = updated
        return entity

    def _record(self, entity: Any) -> ExportRecord:
        export = self._read(entity)
        stamp = entity.metadata.get("timestamp") or self._now()
        updated = entity.get(UPDATED) or stamp
        created = entity.get(CREATED) or updated
        return ExportRecord(export, str(entity.metadata["etag"]), _utc(created), _utc(updated))

    def _to_entity(self, export: Export) -> dict[str, Any]:
        """The table entity of an export, its keys sealed."""
        destination = export.destination
        context = _context(export.project_id, export.export_id)
        entity: dict[str, Any] = {
            "PartitionKey": export.project_id,
            "RowKey": export.export_id,
            "destination_type": destination.kind,
            "account_url": destination.account_url,
            **self._credential_properties(destination.credential, context),
            **_signals_properties(export.signals),
            "granularity": export.granularity.value,
            "enabled": export.enabled,
            "status": export.status.value,
            "webhook": export.webhook or "",
            "sealed_webhook_secret": (
                self._keys.seal(export.webhook_secret, context + "/webhook") if export.webhook_secret else ""
            ),
            "generation": export.generation,
            "replay_placement": export.replay_placement.value,
        }
        if isinstance(destination, AdlsDestination):
            entity["filesystem"] = destination.filesystem
            entity["directory"] = destination.directory
        else:
            entity["container"] = destination.container
        if export.location is not None:  # absent when off: entities written before it read the same
            option = export.location
            entity["location"] = orjson.dumps(
                {"ip_field": option.ip_field, "key": option.key, "anonymize": option.anonymize}
            ).decode()
        return entity

    def _credential_properties(self, credential: Credential, context: str) -> dict[str, Any]:
        """The credential as properties: the method (absent: shared key, as rows written before it),
        the key or SAS sealed under a context that names the method (one can never be read as the
        other), or the Entra tenant (no secret)."""
        if isinstance(credential, EntraId):
            return {"auth": AuthMethod.ENTRA.value, "sealed_key": "", "tenant_id": credential.tenant_id}
        if isinstance(credential, SasToken):
            sealed = self._keys.seal(credential.token, _credential_context(context, AuthMethod.SAS))
            return {"auth": AuthMethod.SAS.value, "sealed_key": sealed}
        return {"sealed_key": self._keys.seal(credential, context)}

    def _credential(self, entity: Any, context: str) -> Credential:
        method = AuthMethod(entity.get("auth") or AuthMethod.SHARED_KEY)
        if method is AuthMethod.ENTRA:
            return EntraId(str(entity["tenant_id"]))
        secret = self._keys.open(entity["sealed_key"], _credential_context(context, method))
        if method is AuthMethod.SAS:
            return parse_sas(secret.value, str(entity["destination_type"]))
        return secret

    def _from_entity(self, entity: Any) -> Export:
        """The export an entity holds, its keys opened."""
        project_id, export_id = entity["PartitionKey"], entity["RowKey"]
        credential = self._credential(entity, _context(project_id, export_id))
        destination: Destination
        if entity["destination_type"] == "adls":
            destination = AdlsDestination(
                entity["account_url"], entity["filesystem"], entity.get("directory", ""), credential
            )
        else:
            destination = BlobDestination(entity["account_url"], entity["container"], credential)
        signals = (
            "".join(
                entity.get(f"signals{i}" if i else "signals", "")
                for i in range(int(entity.get("signals_parts", 1)))
            )
            or "*"
        )
        return Export(
            project_id=project_id,
            export_id=export_id,
            destination=destination,
            signals=None if signals == "*" else frozenset(orjson.loads(signals)),
            granularity=Granularity(entity.get("granularity", "hour")),
            enabled=bool(entity.get("enabled", True)),
            status=ExportStatus(entity.get("status", "active")),
            webhook=entity.get("webhook") or None,
            webhook_secret=(
                self._keys.open(entity["sealed_webhook_secret"], _context(project_id, export_id) + "/webhook")
                if entity.get("sealed_webhook_secret")
                else None
            ),
            generation=str(entity.get("generation", "")),
            replay_placement=ReplayPlacement(entity.get("replay_placement") or ReplayPlacement.CURRENT),
            location=LocationOption(**orjson.loads(entity["location"])) if entity.get("location") else None,
        )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _with_generation(export: Export) -> Export:
    return replace(export, generation=secrets.token_hex(8))


_PROPERTY_CHARS = 30_000  # a string property holds 32K UTF-16 characters at most
_TRANSACTION = 100  # operations in one entity-group transaction


def _signals_properties(signals: frozenset[str] | None) -> dict[str, Any]:
    """The signal selection as properties: a long list (up to 1,000 names of 256 characters) does not
    fit one string property, so it is split over `signals`, `signals1`, ... like the ledger's files."""
    text = "*" if signals is None else orjson.dumps(sorted(signals)).decode()
    chunks = [text[i : i + _PROPERTY_CHARS] for i in range(0, len(text), _PROPERTY_CHARS)]
    properties: dict[str, Any] = {"signals": chunks[0], "signals_parts": len(chunks)}
    properties.update({f"signals{i}": chunk for i, chunk in enumerate(chunks) if i})
    return properties


def _context(project_id: str, export_id: str) -> str:
    return f"export:{project_id}/{export_id}"


def _credential_context(context: str, method: str | None) -> str:
    """A sealed SAS is bound to its method too: a row whose method was changed does not open."""
    return f"{context}/sas" if method == AuthMethod.SAS else context


class ExportRegistry:
    """The exports of each project, as the trigger needs them: looked up per project, on the first
    batch that carries the project's signals, and kept for `max_age` seconds.

    A lookup is one partition query (PartitionKey = project), whatever the number of exports in the
    table; a project without exports costs one query per period too, and is remembered as such. A change
    made through the store is in force in every instance within `max_age` seconds, as each instance asks
    again once its answer is that old. Reading on every batch would cost a request per batch for data
    that changes rarely; reading the whole table would cost every instance a request per thousand
    exports per period, whether or not its partitions carry those projects' signals.

    An answer that did not change keeps its identity (the export path keeps plans while it does), and
    answers older than `max_age` are dropped, so memory follows the projects seen recently.
    """

    def __init__(
        self,
        load: Callable[[str], list[Export]],
        *,
        max_age: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._by_project: dict[str, list[Export]] = {}
        self._loaded_at: dict[str, float] = {}
        self._swept_at = clock()

    def exports_of(self, project_id: str) -> list[Export]:
        now = self._clock()
        with self._lock:
            loaded_at = self._loaded_at.get(project_id)
            if loaded_at is not None and now - loaded_at < self._max_age:
                return self._by_project.get(project_id, [])
        return self._refresh(project_id, now)

    def _refresh(self, project_id: str, now: float) -> list[Export]:
        """Ask the table (outside the lock: a slow answer for one project holds up no other)."""
        try:
            exports = self._load(project_id)
        except Exception:
            with self._lock:
                if project_id not in self._loaded_at:
                    raise  # nothing to fall back on: the batch must wait for the table
                # The table did not answer: keep exporting by the last view, try again soon.
                log.warning(
                    "export table unreadable; using the previous view",
                    exc_info=True,
                    extra={"project_id": project_id},
                )
                self._loaded_at[project_id] = now - self._max_age + min(5.0, self._max_age)
                return self._by_project.get(project_id, [])
        with self._lock:
            known = self._by_project.get(project_id)
            if known is None or known != exports:
                known = self._by_project[project_id] = exports
            self._loaded_at[project_id] = now
            self._sweep(now)
            return known

    def _sweep(self, now: float) -> None:
        """Forget the answers no batch asked for within the period (once per period: cheap)."""
        if now - self._swept_at < self._max_age:
            return
        self._swept_at = now
        for project_id in list(self._by_project):
            if now - self._loaded_at.get(project_id, -math.inf) >= self._max_age:
                self._loaded_at.pop(project_id, None)
                del self._by_project[project_id]

    def invalidate(self) -> None:
        """Forget when each answer was read: the next batch of each project asks again (used after a
        local change)."""
        with self._lock:
            self._loaded_at.clear()
