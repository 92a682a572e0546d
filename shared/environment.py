"""Reading values from app settings: one way to parse a number or a switch, with errors that name it."""

from __future__ import annotations

from collections.abc import Mapping


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


def number(
    env: Mapping[str, str],
    name: str,
    default: float,
    *,
    whole: bool = False,
    low: float | None = None,
    high: float | None = None,
) -> float:
    """A number setting: missing or empty gives the default. Positive unless bounds are given
    (inclusive); `whole` refuses fractions."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if whole and not value.is_integer():
        raise SettingsError(f"{name} must be a whole number, got {raw!r}")
    if low is None and value <= 0:
        raise SettingsError(f"{name} must be positive, got {raw!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
        raise SettingsError(f"{name} must be {bounds}, got {raw!r}")
    return value


def flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    """A true/false setting; anything else is an error rather than a silent false."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"0", "false", "no", "off"}:
        return False
    if raw in {"1", "true", "yes", "on"}:
        return True
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def listing(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated setting, blanks dropped (empty when unset)."""
    return tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())
