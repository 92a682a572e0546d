"""`python -m bench [--quick] [--only SECTION,...] [--out DIR]`: run the measurements, print the table,
write results.json and throughput.png (default folder: bench/results, git-ignored)."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from bench import coldstart, cpu, endtoend, location, memory, replay_drain, report, requests_per_batch, scale
from bench.common import Scale
from bench.stack import Stack

RESULTS = Path(__file__).resolve().parent / "results"
SECTIONS = ("cpu", "location", "requests", "end_to_end", "replay", "cold_start", "memory", "scale")
OFF_STACK: dict[str, Callable[[Scale, Callable[[str], None]], dict[str, Any]]] = {
    "cpu": cpu.measure,
    "location": location.measure,
}
ON_STACK: dict[str, Callable[[Stack, Scale, Callable[[str], None]], dict[str, Any]]] = {
    "requests": requests_per_batch.measure,
    "end_to_end": endtoend.measure,
    "replay": replay_drain.measure,
    "cold_start": coldstart.measure,
    "memory": memory.measure,
    "scale": scale.measure,
}


def run(scale: Scale, sections: tuple[str, ...], log: Callable[[str], None]) -> dict[str, Any]:
    """Run the chosen measurements; the results as results.json holds them."""
    started = time.monotonic()
    load_start = os.getloadavg()[0]
    results: dict[str, Any] = {"sections": {}}
    seconds: dict[str, float] = {}
    for name, measure_off in OFF_STACK.items():
        if name in sections:
            log(report.SECTION_TITLES[name])
            mark = time.monotonic()
            results["sections"][name] = measure_off(scale, log)
            seconds[name] = time.monotonic() - mark
    if any(section in ON_STACK for section in sections):
        log("starting Azurite and the ADLS Gen2 emulator")
        mark = time.monotonic()
        with Stack.start() as stack:
            seconds["stack_start"] = time.monotonic() - mark
            for name, measure in ON_STACK.items():
                if name in sections:
                    log(report.SECTION_TITLES[name])
                    mark = time.monotonic()
                    results["sections"][name] = measure(stack, scale, log)
                    seconds[name] = time.monotonic() - mark
    results["figures"] = {
        figure["id"]: figure for section in results["sections"].values() for figure in section["figures"]
    }
    results["meta"] = {
        "mode": "quick" if scale.quick else "full",
        "finished": datetime.now(UTC).isoformat(),
        "duration_s": time.monotonic() - started,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
        "e2e_method": endtoend.METHOD,
        "sections": list(results["sections"]),
        "section_seconds": seconds,
    }
    return results


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode="markdown")


def _sections(value: str) -> str:
    """`--only` names known sections."""
    unknown = {s.strip() for s in value.split(",") if s.strip()} - set(SECTIONS)
    if unknown:
        raise typer.BadParameter(f"unknown sections {sorted(unknown)}; known: {', '.join(SECTIONS)}")
    return value


@app.command(help=__doc__)
def bench(
    quick: Annotated[
        bool, typer.Option("--quick", help="A few seconds: every figure, small and once.")
    ] = False,
    only: Annotated[
        str,
        typer.Option(
            callback=_sections, help=f"Comma-separated sections (default all: {','.join(SECTIONS)})."
        ),
    ] = ",".join(SECTIONS),
    out: Annotated[Path, typer.Option(help="Where results.json and throughput.png go.")] = RESULTS,
) -> None:
    sections = tuple(s.strip() for s in only.split(",") if s.strip())
    console = Console(width=max(150, Console().width), record=True)

    def log(message: str) -> None:
        console.print(message, highlight=False, markup=False)

    chosen = Scale.small() if quick else Scale.full()
    results = run(chosen, sections, log)
    console.export_text(clear=True)  # table.txt holds the tables, not the progress lines
    console.print()
    report.print_tables(results, console)
    report.write_json(results, out / "results.json")
    written = [out / "results.json", out / "table.txt"]
    if "cpu" in results["sections"]:
        report.plot(results["sections"]["cpu"], out / "throughput.png")
        written.insert(1, out / "throughput.png")
    (out / "table.txt").write_text(console.export_text())
    console.print("wrote " + ", ".join(map(str, written)))


if __name__ == "__main__":
    app(prog_name="python -m bench")
