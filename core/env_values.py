"""How one environment variable's text becomes a typed value, with the same words in every command: a whole
number or a number within bounds, a switch (1/0, true/false), one of a few choices, free text (trimmed; empty is
unset) and a credential. Each is an annotated type whose validator names the variable it reads; core/settings.py
declares every variable with one of them (pydantic-settings reads the environment)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, SecretStr, ValidationInfo

from core.errors import UserError

TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _range(minimum: float, maximum: float | None, whole: bool) -> str:
    kind = "a whole number" if whole else "a number"
    return f"{kind} from {minimum:g} to {maximum:g}" if maximum is not None else f"{kind} >= {minimum:g}"


def parse_int(name: str, raw: str | None, minimum: int = 0, maximum: int | None = None) -> int | None:
    """The one integer parser for environment variables: '' or unset is None; anything else is a whole
    number in [minimum, maximum] or a UserError naming the variable and what it accepts."""
    raw = (raw or "").strip()
    if not raw:
        return None
    if not raw.lstrip("-").isdigit() or not minimum <= int(raw) <= (maximum if maximum is not None else int(raw)):
        raise UserError(f"{name} must be {_range(minimum, maximum, True)}, not '{raw}'")
    return int(raw)


def parse_float(name: str, raw: str | None, minimum: float = 0.0, maximum: float | None = None) -> float | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"{name} must be a number, not '{raw}'") from None
    if value != value or value < minimum or (maximum is not None and value > maximum) or value == float("inf"):
        raise UserError(f"{name} must be {_range(minimum, maximum, False)}, not '{raw}'")
    return value


def parse_bool(name: str, raw: str | None, default: bool) -> bool:
    raw = (raw or "").strip().lower()
    if not raw:
        return default
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    raise UserError(f"{name} must be 1 or 0 (true/false), not '{raw}'")


def parse_choice(name: str, raw: str | None, choices: tuple[str, ...], unknown: str | None = None) -> str | None:
    """A lower-case choice; `unknown` phrases the error ("unknown distributed strategy") when given."""
    raw = (raw or "").strip()
    if not raw:
        return None
    if raw.lower() in choices:
        return raw.lower()
    if unknown:
        raise UserError(f"{name}: {unknown} '{raw}'", hint=f"one of: {', '.join(choices)}")
    raise UserError(f"{name} must be one of {', '.join(choices)}, not '{raw}'")


@dataclass(frozen=True)
class Bounds:
    """A numeric variable's accepted range (read by settings.flag_type and the tests)."""

    minimum: float
    maximum: float | None
    whole: bool


def _variable(info: ValidationInfo) -> str:
    return str(info.field_name).upper()  # every parsed variable's field is its name in lower case


def _text(raw: Any) -> str | None:
    if raw is None:
        return None
    text = str(raw).strip()
    return text or None


def Whole(minimum: int, maximum: int | None = None) -> Any:
    def check(raw: Any, info: ValidationInfo) -> int | None:
        return raw if raw is None or isinstance(raw, int) else parse_int(_variable(info), str(raw), minimum, maximum)

    return Annotated[int | None, BeforeValidator(check), Bounds(minimum, maximum, True)]


def Number(minimum: float, maximum: float | None = None) -> Any:
    def check(raw: Any, info: ValidationInfo) -> float | None:
        if raw is None or isinstance(raw, int | float):
            return raw
        return parse_float(_variable(info), str(raw), minimum, maximum)

    return Annotated[float | None, BeforeValidator(check), Bounds(minimum, maximum, False)]


def Switch(default: bool) -> Any:
    def check(raw: Any, info: ValidationInfo) -> bool:
        return raw if isinstance(raw, bool) else parse_bool(_variable(info), None if raw is None else str(raw), default)

    return Annotated[bool, BeforeValidator(check)]


def Choice(choices: tuple[str, ...], unknown: str | None = None) -> Any:
    def check(raw: Any, info: ValidationInfo) -> str | None:
        return parse_choice(_variable(info), _text(raw), choices, unknown)

    return Annotated[str | None, BeforeValidator(check)]


Text = Annotated[str | None, BeforeValidator(_text)]
Secret = Annotated[
    SecretStr | None, BeforeValidator(lambda raw: _text(raw.get_secret_value() if isinstance(raw, SecretStr) else raw))
]
