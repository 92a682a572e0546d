"""The functions exactly as `function_app.py` registers them, for the local host.

`function_app.app.get_functions()` indexes the app the way the Functions worker does; it may only run
once per process (a second call fails on duplicate names), so its result is cached here. When other
code in the process indexed the app first (tests/support.py's cache), the functions it built are used.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from devstack import timespan

EVENT_HUB = "eventHubTrigger"
TIMER = "timerTrigger"
QUEUE = "queueTrigger"
HTTP = "httpTrigger"


@dataclass(frozen=True)
class RetryPolicy:
    """A function's `@app.retry` policy, as the host applies it to trigger invocations."""

    strategy: str = "fixed_delay"
    max_retry_count: int = 0  # -1: without end
    delay: float = 0.0  # fixed_delay
    minimum_interval: float = 0.0  # exponential_backoff
    maximum_interval: float = 0.0

    @classmethod
    def from_settings(cls, raw: dict[str, Any]) -> RetryPolicy:
        return cls(
            strategy=str(raw.get("strategy", "fixed_delay")),
            max_retry_count=int(raw.get("max_retry_count", 0)),
            delay=timespan.seconds(raw.get("delay_interval"), 0.0),
            minimum_interval=timespan.seconds(raw.get("minimum_interval"), 0.0),
            maximum_interval=timespan.seconds(raw.get("maximum_interval"), 0.0),
        )

    def delay_before(self, attempt: int) -> float | None:
        """Seconds to wait before retry number `attempt` (1-based); None: give up."""
        if self.max_retry_count >= 0 and attempt > self.max_retry_count:
            return None
        if self.strategy == "exponential_backoff":
            return float(min(self.maximum_interval, self.minimum_interval * 2 ** (attempt - 1)))
        return self.delay


@dataclass(frozen=True)
class Registered:
    """One registered function: its name, its trigger binding (function.json form) and its code."""

    name: str
    trigger: dict[str, Any]
    handler: Callable[..., Any]
    retry: RetryPolicy | None = None

    @property
    def kind(self) -> str:
        return str(self.trigger.get("type", ""))


@functools.cache
def indexed() -> dict[str, Any]:
    """The app's functions as the worker indexes them, by name: `get_functions()` may only run once
    per process (a second call fails on duplicate names), so every user in the process shares this."""
    import function_app

    return {str(f.get_function_name()): f for f in function_app.app.get_functions()}


@functools.cache
def registered_functions() -> dict[str, Registered]:
    """Every function of the app, by name, with its trigger binding and retry policy."""
    found: dict[str, Registered] = {}
    for function in indexed().values():
        bindings: list[dict[str, Any]] = json.loads(function.get_function_json())["bindings"]
        trigger = next((b for b in bindings if str(b.get("type", "")).endswith("Trigger")), {})
        policy = function.get_setting("retry_policy")
        name = str(function.get_function_name())
        found[name] = Registered(
            name,
            trigger,
            function.get_user_function(),
            RetryPolicy.from_settings(policy.get_dict_repr()) if policy is not None else None,
        )
    return found


def of_kind(kind: str) -> list[Registered]:
    """The registered functions with this trigger type (e.g. `timerTrigger`)."""
    return [f for f in registered_functions().values() if f.kind == kind]


def one_of_kind(kind: str) -> Registered:
    functions = of_kind(kind)
    if len(functions) != 1:
        names = ", ".join(f.name for f in functions) or "none"
        raise LookupError(f"expected one {kind} function in function_app.py, found {names}")
    return functions[0]


def resolve(value: str, settings: Mapping[str, str]) -> str:
    """A binding value with `%SETTING%` references replaced, as the host does."""
    if value.startswith("%") and value.endswith("%") and len(value) > 2:
        name = value[1:-1]
        if name not in settings:
            raise LookupError(f"the binding refers to the setting {name}, which is not set")
        return settings[name]
    return value
