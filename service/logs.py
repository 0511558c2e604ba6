"""structlog set-up: JSON lines when stdout is not a terminal, readable lines on a terminal.

A redaction processor replaces every configured secret (API keys, passwords) by ``***`` in every value of every
event, whatever put it there; keys named like secrets (``passwd``, ``secure_key``, ``api_key``...) are dropped.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

SECRET_FIELDS = frozenset(
    {"passwd", "password", "secure_key", "api_key", "apikey", "dolapikey", "ws_key", "authorization", "key"}
)
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class Redactor:
    """A structlog processor that hides secrets. Secrets shorter than 6 characters are not searched for (they
    would blank out ordinary words); real keys are 32 characters."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        self.secrets.update(s for s in secrets if s and len(s) >= 6)

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self.secrets:
                if secret in value:
                    value = value.replace(secret, "***")
            return value
        if isinstance(value, dict):
            return {
                k: ("***" if str(k).lower() in SECRET_FIELDS else self.scrub(v)) for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            return type(value)(self.scrub(v) for v in value)
        if isinstance(value, (int, float, bool)) or value is None:
            return value
        return self.scrub(str(value))

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key in list(event):
            if key.lower() in SECRET_FIELDS:
                event[key] = "***"
            else:
                event[key] = self.scrub(event[key])
        return event


def configure(
    level: str = "info",
    *,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
    json: bool | None = None,
) -> Redactor:
    """Configure structlog for the whole process; returns the redactor so more secrets can be added."""
    out = stream or sys.stderr
    use_json = (not out.isatty()) if json is None else json
    redactor = Redactor(secrets)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redactor,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    return redactor
