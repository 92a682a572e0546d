"""5. Cold start, each in a fresh process, alternating round by round:

- importing `function_app` (what the worker does before anything else), against importing just the
  packages it cannot avoid: azure.functions, azure.storage.blob, azure.storage.filedatalake,
  azure.storage.queue, azure.data.tables, fastapi and orjson. Timed inside the process, around the
  import statement (interpreter start-up excluded; bytecode caches warm, as after a deployment's
  first start);
- the first invocation: the registered `export_signals` called on a small batch (10 signals of 1 KB)
  in a fresh process against the local stack (the Runtime, its clients and the export registry are
  built on that first call), against the second, warm invocation in the same process.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from bench.common import Figure, Scale, median, paired, ratios
from bench.stack import Stack, create_export, run_python

PACKAGES = (
    "azure.functions",
    "azure.storage.blob",
    "azure.storage.filedatalake",
    "azure.storage.queue",
    "azure.data.tables",
    "fastapi",
    "orjson",
)
_TIMED_IMPORT = (
    "import time\nstart = time.perf_counter()\nimport {modules}\nprint(time.perf_counter() - start)"
)


def import_seconds(modules: tuple[str, ...]) -> float:
    return float(run_python(["-c", _TIMED_IMPORT.format(modules=", ".join(modules))]))


def measure(stack: Stack, scale: Scale, log: Callable[[str], None] = print) -> dict[str, Any]:
    if not scale.quick:
        import_seconds(("function_app",))  # bytecode written once, as after a deployment's first start
    imports = paired(
        {
            "app": lambda: import_seconds(("function_app",)),
            "packages": lambda: import_seconds(PACKAGES),
        },
        scale.cold_repeats,
    )
    hub = f"cold{uuid.uuid4().hex[:8]}"
    runtime = stack.runtime(hub)
    project = f"cold-{uuid.uuid4().hex[:8]}"
    create_export(runtime, project, "lake", stack.adls(f"cold{uuid.uuid4().hex[:8]}"))
    calls = []
    for round_ in range(scale.cold_repeats):
        out = run_python(
            ["-m", "bench.probe", "first-call", project, "0", str(round_ * 100)],
            stack.environment(hub),
        )
        calls.append(json.loads(out))
    first = [c["first"] for c in calls]
    warm = [c["warm"] for c in calls]
    app_vs_packages = ratios(imports["app"], imports["packages"])
    first_vs_warm = ratios(first, warm)
    figures = [
        Figure(
            "cold.import_app",
            "import function_app",
            median(imports["app"]),
            "s",
            imports["app"],
            reference="cold.import_packages",
            ratio=median(app_vs_packages),
        ),
        Figure(
            "cold.import_packages",
            "import unavoidable packages",
            median(imports["packages"]),
            "s",
            imports["packages"],
            note=", ".join(PACKAGES),
        ),
        Figure(
            "cold.import_overhead",
            "function_app / packages",
            median(app_vs_packages),
            "x",
            app_vs_packages,
            reference="cold.import_packages",
            ratio=median(app_vs_packages),
        ),
        Figure(
            "cold.first_invocation",
            "first export_signals call",
            median(first),
            "s",
            first,
            reference="cold.warm_invocation",
            ratio=median(first_vs_warm),
        ),
        Figure("cold.warm_invocation", "warm export_signals call", median(warm), "s", warm),
    ]
    log(
        f"  cold start: import function_app {median(imports['app']) * 1000:.0f} ms vs packages "
        f"{median(imports['packages']) * 1000:.0f} ms; first call {median(first) * 1000:.0f} ms vs warm "
        f"{median(warm) * 1000:.0f} ms"
    )
    return {"repeats": scale.cold_repeats, "calls": calls, "figures": [f.to_json() for f in figures]}
