"""The run's outputs: the table (rich), results.json and the throughput plot (PNG)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

SECTION_TITLES = {
    "cpu": "1. Export path CPU throughput",
    "requests": "2. Storage requests per batch",
    "end_to_end": "3. End to end on the local stack",
    "replay": "4. Replay",
    "cold_start": "5. Cold start",
    "memory": "6. Memory",
    "location": "7. Location enrichment",
    "scale": "8. Scale",
}


def _number(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1000:,.0f} ms" if value < 10 else f"{value:,.1f} s"
    if unit == "x":
        return f"x{value:,.2f}"
    if abs(value) >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:,.3g} {unit}"


def cpu_table(section: dict[str, Any]) -> Table:
    table = Table(
        title=f"{SECTION_TITLES['cpu']}: signals per CPU second, batches of {section['batch_events']}, "
        f"median of {section['repeats']} rounds",
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    for column in (
        "exports",
        "signal",
        "export path",
        "limit reference",
        "usual approach",
        "vs limit",
        "vs usual",
    ):
        table.add_column(column, justify="right")
    for row in section["rows"]:
        size = f"{row['signal_bytes']:,} B"

        def cell(name: str, row: dict[str, Any] = row) -> str:
            return f"{row[name]['signals_per_s']:,.0f}/s ({row[name]['mb_per_s']:,.1f} MB/s)"

        goal = row["exports"] == 10
        table.add_row(
            str(row["exports"]),
            size,
            cell("exporter"),
            cell("limit"),
            cell("usual"),
            f"x{row['vs_limit']:.2f}" + (" (goal x0.5)" if goal else ""),
            f"x{row['vs_usual']:.1f}" + (" (goal x10)" if goal else ""),
        )
    return table


def location_table(section: dict[str, Any]) -> Table:
    table = Table(
        title=f"{SECTION_TITLES['location']}: export path with the location option against without, "
        f"{section['exports']} exports, signals per CPU second, batches of {section['batch_events']}, "
        f"median of {section['repeats']} rounds",
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    for column in ("signal", "case", "without", "with location", "with / without", "enrichment per signal"):
        table.add_column(column, justify="right")
    for row in section["rows"]:
        goal = f" (goal x{row['goal']})" if row.get("goal") else ""
        table.add_row(
            f"{row['signal_bytes']:,} B",
            row["case"],
            f"{row['without']:,.0f}/s",
            f"{row['with']:,.0f}/s",
            f"x{row['ratio']:.2f}{goal}",
            f"{row['enrichment_us']:.2f} us",
        )
    return table


ON_STACK = ("requests", "end_to_end", "replay", "cold_start", "memory", "scale")  # figures_table's sections


def figures_table(results: dict[str, Any]) -> Table:
    table = Table(
        title="2-6, 8. Storage, end to end, replay, cold start, memory, scale (medians; ratio pairwise)",
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    table.add_column("figure", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("ratio", justify="right", no_wrap=True)
    table.add_column("against", no_wrap=True)
    table.add_column("note", overflow="fold")
    figures = results["figures"]
    for key in ON_STACK:
        section = results["sections"].get(key)
        if not section:
            continue
        table.add_row(f"[bold]{SECTION_TITLES[key]}[/bold]", "", "", "", "")
        for figure in section["figures"]:
            reference = figure.get("reference")
            against = figures[reference]["label"] if reference in figures else (reference or "")
            ratio = figure.get("ratio")
            table.add_row(
                "  " + figure["label"],
                _number(figure["value"], figure["unit"]),
                "" if ratio is None or figure["unit"] == "x" else f"x{ratio:,.2f}",
                against,
                figure.get("note", ""),
            )
    return table


def goals_table(results: dict[str, Any]) -> Table:
    table = Table(title="Goals (issue): at 10 exports", box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("figure", "measured", "goal", "met"):
        table.add_column(column)
    for figure in results["figures"].values():
        if figure.get("goal"):
            table.add_row(
                figure["label"],
                f"x{figure['value']:.2f}",
                figure["goal"],
                "yes" if figure.get("met") else "NO",
            )
    return table


def print_tables(results: dict[str, Any], console: Console) -> None:
    if "cpu" in results["sections"]:
        console.print(cpu_table(results["sections"]["cpu"]))
    if "location" in results["sections"]:
        console.print(location_table(results["sections"]["location"]))
    if any(figure.get("goal") for figure in results["figures"].values()):
        console.print(goals_table(results))
    if any(key in results["sections"] for key in ON_STACK):  # `--only cpu,location`: no empty table
        console.print(figures_table(results))
    meta = results["meta"]
    conditions = (
        f"{meta['mode']} run, {meta['duration_s']:.0f} s, {meta['cpus']} CPUs, load average "
        f"{meta['load_start']:.1f} at start, {meta['load_end']:.1f} at end"
    )
    if "end_to_end" in results["sections"]:
        conditions += f"; end to end: {meta['e2e_method']}"
    console.print(conditions)


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=str) + "\n")


def plot(section: dict[str, Any], path: Path) -> None:
    """Throughput against the number of exports: one panel per signal size, the three approaches."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({row["size"] for row in section["rows"]})
    figure, axes = plt.subplots(1, len(sizes), figsize=(4.2 * len(sizes), 4), sharey=True, squeeze=False)
    styles = {
        "exporter": ("export path", "tab:blue", "o"),
        "limit": ("limit reference (simdjson + join)", "tab:green", "s"),
        "usual": ("usual approach (json.loads + dumps)", "tab:red", "^"),
    }
    for axis, size in zip(axes[0], sizes, strict=True):
        rows = sorted((r for r in section["rows"] if r["size"] == size), key=lambda r: r["exports"])
        exports = [r["exports"] for r in rows]
        for name, (label, color, marker) in styles.items():
            axis.plot(
                exports, [r[name]["signals_per_s"] for r in rows], marker=marker, color=color, label=label
            )
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xticks(exports, [str(e) for e in exports])
        axis.set_xlabel("exports per project")
        axis.set_title(f"signals of {rows[0]['signal_bytes']:,} B")
        axis.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("signals per CPU second")
    axes[0][-1].legend(fontsize=8)
    figure.suptitle(f"Export path CPU throughput (batches of {section['batch_events']}, medians)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
