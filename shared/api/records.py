"""The API's reads and writes of the exports table: ExportStore's entities (sealed keys and all) plus
when the export was created and last changed by its customer, with the etag of each version.

Writes are conditional: `create` fails if the export exists, `replace` and `delete` (with an etag)
fail if it changed since that etag was read. Both raise shared.store's StaleExport.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.model import Export
from shared.store import ExportNotFound, ExportStore, ExportUnreadable, StaleExport

CREATED = "created_at"
UPDATED = "updated_at"


@dataclass(frozen=True)
class ExportRecord:
    """One version of an export."""

    export: Export
    etag: str  # the table's etag of this version
    created_at: datetime
    updated_at: datetime


class ExportRecords:
    """The exports table as the API uses it: one request per call (a list: one per project)."""

    def __init__(self, store: ExportStore, table: TableClient) -> None:
        self._store = store
        self._table = table

    def find(self, project_id: str, export_id: str) -> ExportRecord | None:
        try:
            entity = self._table.get_entity(project_id, export_id)
        except ResourceNotFoundError:
            return None
        return self._record(entity)

    def list(self, projects: Collection[str] | None) -> list[ExportRecord]:
        """The exports of the given projects (None: of every project), by project then id."""
        if projects is None:
            entities: Iterable[Any] = self._table.list_entities()
        else:
            entities = (
                entity
                for project_id in sorted(projects)
                for entity in self._table.query_entities("PartitionKey eq @p", parameters={"p": project_id})
            )
        records: list[ExportRecord] = []
        for entity in entities:
            try:
                records.append(self._record(entity))
            except ExportUnreadable:
                continue  # logged by the health check, which reports it on the export's health
        return records

    def create(self, export: Export) -> ExportRecord:
        if not export.generation:  # every export gets its own: files of an earlier one are not its
            export = replace(export, generation=secrets.token_hex(8))
        now = datetime.now(UTC)
        entity = self._entity(export, created=now, updated=now)
        try:
            result = self._table.create_entity(entity)
        except ResourceExistsError:
            raise StaleExport(f"export {export.export_id} already exists") from None
        return ExportRecord(export, str(result["etag"]), now, now)

    def replace(self, export: Export, *, etag: str, created_at: datetime) -> ExportRecord:
        now = datetime.now(UTC)
        entity = self._entity(export, created=created_at, updated=now)
        try:
            result = self._table.update_entity(
                entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except ResourceNotFoundError:
            raise ExportNotFound(export.export_id) from None
        except HttpResponseError as error:
            if error.status_code == 412:
                raise StaleExport(f"export {export.export_id} changed since it was read") from None
            raise
        return ExportRecord(export, str(result["etag"]), created_at, now)

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

    def _entity(self, export: Export, *, created: datetime, updated: datetime) -> dict[str, Any]:
        # ExportStore owns the entity's shape and the sealing of keys; the API adds its two times.
        entity = self._store.to_entity(export)
        entity[CREATED] = created
        entity[UPDATED] = updated
        return entity

    def _record(self, entity: Any) -> ExportRecord:
        export = self._store.read(entity)
        stamp = entity.metadata.get("timestamp") or datetime.now(UTC)
        updated = entity.get(UPDATED) or stamp
        created = entity.get(CREATED) or updated
        return ExportRecord(export, str(entity.metadata["etag"]), _utc(created), _utc(updated))


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
