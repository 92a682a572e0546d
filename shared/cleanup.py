"""What deleting an export removes beside its configuration: its health record, its ledger entries
and its backlog (signals it could not write: with the export gone, nobody can resume them).

Exported data stays where it is: nothing in the customer's storage is touched. A batch already in
flight when the export is deleted may still add a ledger entry or a backlog file; the backlog
container's lifecycle rule removes such a file after 8 days.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from azure.core.exceptions import ResourceNotFoundError

from shared import ledger
from shared.backlog import list_backlog

if TYPE_CHECKING:
    from shared.runtime import Runtime

log = logging.getLogger("signals_export.cleanup")


def forget_export(runtime: Runtime, project_id: str, export_id: str) -> int:
    """Remove a deleted export's service-side state; return how many backlog files were discarded."""
    runtime.health_records.delete(project_id, export_id)
    ledger.forget(runtime.ledger_table, project_id, export_id)
    discarded = 0
    for blob in list_backlog(runtime.backlog_container, project_id, export_id):
        try:
            runtime.backlog_container.delete_blob(blob.name)
        except ResourceNotFoundError:
            continue
        discarded += 1
    if discarded:
        log.warning(
            "deleted export's backlog discarded",
            extra={"project_id": project_id, "export_id": export_id, "files": discarded},
        )
    return discarded
