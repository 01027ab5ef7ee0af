"""The one sanitiser for error text that leaves a stage (manifest, logs, Airflow task log, alerts).

Error messages of the libraries we call quote the offending value: Spark's ANSI cast errors
(``The value '110105…' of the type "STRING" cannot be cast to "INT"``), openpyxl's
``IllegalCharacterError`` (the whole cell text, unquoted), Python's ``invalid literal for int()``,
pyarrow's ``Failed to parse string: '…'``. Names cannot be recognised in general, so this module
keeps the *shape* of a message and drops its values:

- kept: the exception type, Spark's error class (``[CAST_INVALID_INPUT]``), SQLSTATE, English
  words of the message template, Spark type names in double quotes (``"STRING"``), simple ASCII
  identifiers in backticks (column names), ISO dates and short numbers (counts, line numbers);
- dropped: every single-quoted, curly-quoted or other double-quoted literal, every run of 6 or
  more digits (ID numbers with ``X``, 15-digit IDs, mobiles, ``+86`` and landlines with
  separators), every run of non-ASCII letters (Chinese names and addresses), control characters,
  and the value part of templates known to lead with the value (openpyxl).

:func:`sanitise_text` is idempotent; :func:`describe_exception` is what failure records use;
:class:`SanitisingFilter` is installed on log handlers by :func:`install_log_filter`.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

#: What replaces a dropped value.
REDACTED = "<redacted>"
MAX_CHARS = 2000

# Templates whose value is not quoted: (pattern, replacement).
_TEMPLATES: tuple[tuple[re.Pattern[str], str], ...] = (
    # openpyxl: IllegalCharacterError(f"{value} cannot be used in worksheets.")
    (re.compile(r"(IllegalCharacterError: ).*?(cannot be used in worksheets)", re.S), r"\1" + REDACTED + r" \2"),
    (re.compile(r"^(?![^\n]*IllegalCharacterError)[^\n]*?(cannot be used in worksheets)", re.M), REDACTED + r" \1"),
    # Spark ANSI casts: the value may itself contain quotes, so cut up to the template's next words
    (re.compile(r"(The value )'.*?'( of the type )", re.S), r"\1'" + REDACTED + r"'\2"),
    (re.compile(r"(invalid literal for [\w()]+ with base \d+: ).*$", re.M), r"\1" + REDACTED),
    (re.compile(r"(could not convert string to \w+: ).*$", re.M), r"\1" + REDACTED),
)
_SPARK_TYPE = re.compile(
    r'"(?:STRING|VARCHAR\(\d+\)|CHAR\(\d+\)|INT|INTEGER|BIGINT|SMALLINT|TINYINT|LONG|SHORT|BYTE|DOUBLE|FLOAT|REAL|'
    r"DECIMAL(?:\(\d+,\s*\d+\))?|DATE|TIMESTAMP|TIMESTAMP_NTZ|TIMESTAMP_LTZ|BOOLEAN|BINARY|VOID|INTERVAL[A-Z ]*|"
    r'ARRAY<[A-Z_<>, ()0-9]+>|MAP<[A-Z_<>, ()0-9]+>|STRUCT<[A-Za-z_:<>, ()0-9]+>)"'
)
_DOUBLE_QUOTED = re.compile(r'"[^"\n]*"')
_SINGLE_QUOTED = re.compile(r"(?<![A-Za-z0-9])'[^'\n]*'")
_OTHER_QUOTED = re.compile(r"“[^”\n]*”|‘[^’\n]*’|「[^」\n]*」|『[^』\n]*』|«[^»\n]*»")
_BACKTICKED = re.compile(r"`([^`\n]*)`")
_SAFE_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,63}$")
_CODE_FILE = re.compile(r'(?<=File )"[^"\n]*\.py"')  # traceback frames: code, not data
_ISO_DATE = re.compile(r"(?<![0-9])\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?![0-9])")
# +86 and separators between digit groups: 138 1234 5678, 010-8765-4321, +86 13812345678
_DIGITS = re.compile(r"(?:\+[ \t]?)?(?<![0-9])\d[\d \t\-./()]*\d[Xx]?(?![0-9])|(?<![0-9])\d{6,}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u2028\u2029\ufeff]")
# Non-ASCII letters (CJK names and addresses, full-width digits, any other script); punctuation kept.
_NON_ASCII_WORD = re.compile(r"[^\x00-\x7f\u2000-\u206f\u3000-\u303f\uff01-\uff0f\uff1a-\uff20]+")
_PLACEHOLDER = "\x00P{}\x00"


def _digit_count(s: str) -> int:
    return sum(c.isdigit() for c in s)


def _redact_digits(match: re.Match[str]) -> str:
    """Runs of 6+ digits (allowing separators) are values: IDs, phones, account numbers."""
    return REDACTED if _digit_count(match.group(0)) >= 6 else match.group(0)


def sanitise_text(text: Any, limit: int = MAX_CHARS) -> str:
    """``text`` with every literal value removed (see the module docstring); at most ``limit`` chars."""
    s = "" if text is None else str(text)
    if not s:
        return s
    s = _CONTROL.sub(" ", s)
    for pattern, repl in _TEMPLATES:
        s = pattern.sub(repl, s)
    kept: list[str] = []

    def keep(m: re.Match[str]) -> str:
        kept.append(m.group(0))
        return _PLACEHOLDER.format(len(kept) - 1)

    s = _ISO_DATE.sub(keep, s)
    s = _CODE_FILE.sub(keep, s)
    s = _SPARK_TYPE.sub(keep, s)
    s = s.replace(f"'{REDACTED}'", _PLACEHOLDER.format(len(kept)))
    kept.append(f"'{REDACTED}'")
    s = _BACKTICKED.sub(lambda m: keep(m) if _SAFE_IDENT.match(m.group(1)) else f"`{REDACTED}`", s)
    s = _OTHER_QUOTED.sub(REDACTED, s)
    s = _SINGLE_QUOTED.sub(f"'{REDACTED}'", s)
    s = _DOUBLE_QUOTED.sub(f'"{REDACTED}"', s)
    s = _DIGITS.sub(_redact_digits, s)
    s = _NON_ASCII_WORD.sub(REDACTED, s)
    for i, value in enumerate(kept):
        s = s.replace(_PLACEHOLDER.format(i), value)
    s = re.sub(rf"(?:{re.escape(REDACTED)}\s*){{2,}}", REDACTED + " ", s)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def error_class(exc: BaseException) -> str | None:
    """Spark's error class / condition of ``exc`` (``CAST_INVALID_INPUT``), when it has one."""
    for attr in ("getCondition", "getErrorClass"):
        fn = getattr(exc, attr, None)
        if callable(fn):
            try:
                value = fn()
            except Exception:  # noqa: BLE001 - a JVM-backed error may be gone
                value = None
            if value and re.fullmatch(r"[A-Z0-9_.]{1,100}", str(value)):
                return str(value)
    return None


def describe_exception(exc: BaseException, limit: int = MAX_CHARS) -> str:
    """``Type[ERROR_CLASS]: sanitised message`` of an exception (what failure records keep)."""
    name = type(exc).__name__
    cls = error_class(exc)
    head = f"{name}[{cls}]" if cls and f"[{cls}]" not in str(exc) else name
    return sanitise_text(f"{head}: {exc}", limit)


def sanitised_traceback(exc: BaseException, limit: int = 3) -> str:
    """The last frames of ``exc``'s traceback (file, line, code: never values), sanitised."""
    return sanitise_text("".join(traceback.format_tb(exc.__traceback__, limit=limit))[-1500:], 1500)


class SanitisingFilter(logging.Filter):
    """A log filter that sanitises the message and any traceback of every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: A003 - logging's API
        if getattr(record, "_gridlake_sanitised", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not leak its args
            message = str(record.msg)
        record.msg = sanitise_text(message, 20_000)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            text = "".join(traceback.format_exception(*record.exc_info))
            record.exc_text = sanitise_text(text, 20_000)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = sanitise_text(record.exc_text, 20_000)
        context = getattr(record, "context", None)  # PySpark's JSON logger: errorClass, fragment, ...
        if isinstance(context, dict):
            record.context = {k: sanitise_text(v, 2000) for k, v in context.items()}
        if record.stack_info:
            record.stack_info = sanitise_text(record.stack_info, 20_000)
        record._gridlake_sanitised = True
        return True


_FILTER = SanitisingFilter()
#: gridlake's loggers, and PySpark's loggers that log a failed query's message (with its values) to stderr.
LOGGER_NAMES = ("gridlake", "jobs", "matching", "tools", "dags", "py4j", "pyspark", "airflow.task")
PYSPARK_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")


def install_log_filter(extra: logging.Logger | None = None) -> SanitisingFilter:
    """Put the sanitiser on every handler of the root logger and of gridlake's loggers (idempotent).

    A filter on a logger only sees records created on that very logger; a filter on a handler sees
    everything the handler writes, propagated or not. So it goes on every handler present (call
    this again after adding a handler), and on the loggers themselves for records logged on them
    directly (``logging.getLogger("gridlake")`` in the CLI, PySpark's query-context loggers).
    The Airflow task log is the output of the spark-submit child, sanitised line by line in
    :func:`gridlake.airflow_runtime.run_streaming`.
    """
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in LOGGER_NAMES)]
    try:  # PySpark's own loggers must be created by PySpark (they take extra keyword arguments)
        from pyspark.logger import PySparkLogger

        loggers += [PySparkLogger.getLogger(n) for n in PYSPARK_LOGGERS]
    except ImportError:
        pass
    if extra is not None:
        loggers.append(extra)
    for lg in loggers:
        if _FILTER not in lg.filters:
            lg.addFilter(_FILTER)
        for handler in lg.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
    return _FILTER
