"""The trigger's view of the exports: bounded staleness, one read per project and period."""

from __future__ import annotations

import pytest

from shared.exports import ExportRegistry
from shared.model import AdlsDestination, Export, Secret

DEST = AdlsDestination("https://a.dfs.core.windows.net/", "fs", "", Secret("a2V5"))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_table_is_read_once_per_period_and_a_change_shows_within_it() -> None:
    """Within 30 s the snapshot serves every batch; after 30 s the change is in force."""
    clock, reads = Clock(), []
    table = [Export("p", "a", DEST)]

    def load(project: str) -> list[Export]:
        reads.append(clock.now)
        return [export for export in table if export.project_id == project]

    registry = ExportRegistry(load, max_age=30.0, clock=clock)
    assert [e.export_id for e in registry.exports_of("p")] == ["a"]
    table.append(Export("p", "b", DEST))
    clock.now = 29.9
    assert [e.export_id for e in registry.exports_of("p")] == ["a"]
    clock.now = 30.0
    assert [e.export_id for e in registry.exports_of("p")] == ["a", "b"]
    assert reads == [0.0, 30.0]
    assert registry.exports_of("other") == []


def test_an_unreadable_table_keeps_the_last_view_and_retries_soon() -> None:
    """A failed refresh does not stop exports; with no view at all, the error surfaces."""
    clock = Clock()
    answers: list[object] = [[Export("p", "a", DEST)], OSError("table down"), [Export("p", "c", DEST)]]

    def load(project: str) -> list[Export]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    registry = ExportRegistry(load, max_age=30.0, clock=clock)
    registry.exports_of("p")
    clock.now = 31.0
    assert [e.export_id for e in registry.exports_of("p")] == ["a"]
    clock.now = 36.0
    assert [e.export_id for e in registry.exports_of("p")] == ["c"]
    with pytest.raises(OSError, match="down"):
        ExportRegistry(lambda project: (_ for _ in ()).throw(OSError("down")), clock=clock).exports_of("p")


def test_each_project_is_read_on_its_own_and_a_project_without_exports_is_one_cached_answer() -> None:
    """A batch's lookup reads only its project; a project with no export costs one read per period."""
    clock, reads = Clock(), []
    table = [Export("p", "a", DEST), Export("q", "b", DEST)]

    def load(project: str) -> list[Export]:
        reads.append(project)
        return [export for export in table if export.project_id == project]

    registry = ExportRegistry(load, max_age=30.0, clock=clock)
    for _ in range(3):
        assert [e.export_id for e in registry.exports_of("p")] == ["a"]
        assert registry.exports_of("none") == []
    assert reads == ["p", "none"]
    clock.now = 30.0
    table.append(Export("none", "c", DEST))
    assert [e.export_id for e in registry.exports_of("none")] == ["c"]
    assert reads == ["p", "none", "none"]


def test_an_unchanged_answer_keeps_its_identity() -> None:
    """The export path keeps its plans while the list is the same object."""
    clock = Clock()
    table = {"p": [Export("p", "a", DEST)], "q": [Export("q", "b", DEST)]}
    registry = ExportRegistry(lambda project: list(table.get(project, [])), max_age=30.0, clock=clock)
    first = registry.exports_of("p")
    clock.now = 31.0
    assert registry.exports_of("p") is first
    table["p"] = [Export("p", "a", DEST, enabled=False)]
    clock.now = 62.0
    changed = registry.exports_of("p")
    assert changed is not first and not changed[0].enabled
