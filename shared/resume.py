"""Resume: a fixed destination proved, the export active again, and its backlog queued for replay.

Shared by the management API (the customer's resume, or a changed destination) and the health check
(which resumes by itself an export postponed for a cause that passed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from shared.counters import Counters
from shared.destinations import DestinationClients
from shared.exports import Exports
from shared.health.records import HealthRecords
from shared.health.rules import Access, hints
from shared.model import Destination, Export, ExportStatus
from shared.outcomes import WriteFailure
from shared.replay import ReplayQueue


class ResumeRefused(Exception):
    """The destination still fails: nothing was changed."""

    def __init__(self, cause: str, message: str, hint_list: list[str]) -> None:
        super().__init__(message)
        self.cause = cause
        self.message = message
        self.hints = hint_list


@dataclass(frozen=True)
class ResumeResult:
    work_items: int


class Resumer:
    """Resumes exports: check the destination, set the export active, queue its backlog."""

    def __init__(
        self,
        *,
        exports: Exports,
        destinations: DestinationClients,
        replays: ReplayQueue,
        records: HealthRecords,
        changed: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
        access: Callable[[Destination], Access | None] = lambda destination: None,
        counters: Callable[[str, str], Mapping[str, Counters]] | None = None,
    ) -> None:
        self._exports = exports
        self._counters = counters  # an export's counters by ledger partition (shared.ledger.counters_of)
        self._destinations = destinations
        self._replays = replays
        self._records = records
        self._changed = changed  # the export cache is told (shared.exports.ExportRegistry.invalidate)
        self._clock = clock
        self._access = access  # how a destination authenticates, for its hints (shared.onboarding)

    def resume(self, export: Export, *, by: str = "customer") -> ResumeResult:
        """Raises ResumeRefused, changing nothing, while the destination still fails."""
        export, _ = self._exports.get(export.project_id, export.export_id)  # its state now, not the caller's
        failure = self._check(export)
        if failure is not None:
            raise ResumeRefused(
                failure.cause.value,
                f"The destination still fails ({failure}): the export stays {export.status.value}.",
                hints(failure.cause.value, self._access(export.destination)),
            )
        if export.status is not ExportStatus.ACTIVE:
            self._exports.set_status(export.project_id, export.export_id, ExportStatus.ACTIVE, cause="")
            self._changed()
            parts = self._counters(*export.key) if self._counters is not None else None
            self._records.note_resume(export, by=by, now=self._clock(), parts=parts)
        return ResumeResult(self._replays.enqueue(export))

    def _check(self, export: Export) -> WriteFailure | None:
        try:
            self._destinations.prepare(export.destination)
        except WriteFailure as failure:
            return failure
        return self._destinations.probe_write(export.destination)
