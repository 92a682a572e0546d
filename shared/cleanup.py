"""What deleting an export removes beside its configuration: its health record, its ledger entries
and its backlog (signals it could not write: with the export gone, nobody can resume them).

Exported data stays where it is: nothing in the customer's storage is touched. A batch already in
flight when the export is deleted may still add a ledger entry or a backlog file; the backlog
container's lifecycle rule removes such a file after 8 days.
"""

from __future__ import annotations

import logging

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient
from azure.storage.blob import ContainerClient

from shared import ledger
from shared.backlog import list_backlog
from shared.health.records import HealthRecords

log = logging.getLogger("signals_export.cleanup")


class ExportCleanup:
    """Forgets a deleted export's service-side state."""

    def __init__(
        self, *, records: HealthRecords, ledger_table: TableClient, backlog: ContainerClient
    ) -> None:
        self._records = records
        self._ledger_table = ledger_table
        self._backlog = backlog

    def forget(self, project_id: str, export_id: str) -> int:
        """Remove its health record, ledger entries and backlog; return how many backlog files were
        discarded."""
        self._records.delete(project_id, export_id)
        ledger.forget(self._ledger_table, project_id, export_id)
        discarded = 0
        for blob in list_backlog(self._backlog, project_id, export_id):
            try:
                self._backlog.delete_blob(blob.name)
            except ResourceNotFoundError:
                continue
            discarded += 1
        if discarded:
            log.warning(
                "deleted export's backlog discarded",
                extra={"project_id": project_id, "export_id": export_id, "files": discarded},
            )
        return discarded
