"""The shared base of every configuration model, and the one way a pydantic error becomes a ConfigError.

Every loader of a file under ``conf/`` validates through a pydantic model derived from
:class:`ConfigModel` (frozen, unknown keys forbidden) and turns a :class:`pydantic.ValidationError`
into an error with :func:`config_error`. The message names the file, the dotted key path and what was
expected (pydantic's message), never the offending value: it stays short and safe to log. A validator
that rejects one key of its model starts its message with that key (``"columns.b: ..."``); the key
is then appended to the path.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, ValidationError

MAX_SHOWN = 5  # errors listed in one message; the rest are counted
_NAMED = re.compile(r"^([A-Za-z_\[][\w.\[\]]*): ")


class ConfigError(ValueError):
    """A configuration file or override is wrong; the message names the key."""


class ConfigModel(BaseModel):
    """Base of configuration models: frozen, unknown keys rejected, strings stripped."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


def key_path(loc: tuple[int | str, ...], prefix: str = "") -> str:
    """``("comparisons", 0, "levels")`` -> ``comparisons[0].levels`` (after ``prefix``)."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _message(err: dict, prefix: str) -> str:
    loc = tuple(err.get("loc") or ())
    kind = err.get("type", "")
    msg = {"missing": "missing", "extra_forbidden": "unknown key"}.get(kind) or str(err.get("msg", "invalid"))
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    where = key_path(loc, prefix)
    named = _NAMED.match(msg) if kind == "value_error" else None
    if named:  # a model validator names the key it rejects: "columns.b: ..." -> "<where>.columns.b: ..."
        key = named.group(1)
        where = f"{where}{'' if key.startswith('[') else '.'}{key}" if where else key
        msg = msg[named.end():]
    return f"{where}: {msg}" if where else msg


def config_error(exc: ValidationError, file: str, prefix: str = "",
                 cls: type[Exception] = ConfigError) -> Exception:
    """The error to raise for ``exc``: ``<file>: <prefix.key.path>: <what was expected>; ...``.

    ``file`` names the configuration file (or its role), ``prefix`` the section the model was validated
    from (``rules.deadlines``); ``cls`` is the error type to build (``ConfigError`` unless a caller has
    its own, such as the matching specs' ``SpecError``). Raise it ``from None``.
    """
    errors = exc.errors(include_input=False, include_url=False)
    parts = [_message(e, prefix) for e in errors[:MAX_SHOWN]]
    if len(errors) > MAX_SHOWN:
        parts.append(f"and {len(errors) - MAX_SHOWN} more")
    return cls(f"{file}: {'; '.join(parts)}")
