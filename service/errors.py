"""The small typed family of errors ps2doli decides on, and the one place each side maps answers to them.

Every failure the engine sees is one of:

- :class:`ConfigError`   - a wrong setting, a refused key, a missing permission: stop and tell the admin.
- :class:`TransientError` - timeouts, resets, 5xx, 429: try again later, nothing moves.
- :class:`AmbiguousWrite` - a write whose outcome is unknown (timeout/reset/5xx on POST): look the object up by
  ``ref_ext`` before any retry.
- :class:`PermanentError` - the other side refused this record (4xx, validation error): record the failure with its
  payload, go on with the others.
- :class:`NotFound`      - the object does not exist (404): a normal answer for lookups.
- :class:`BadResponse`   - a body that is not what was asked for (HTML, truncated JSON/XML): transient for the
  pass (a proxy page or a half-written answer), reported with the first bytes.

The classification tables live with the clients (``prestashop/errors.py``, ``dolibarr/errors.py``) in the spirit of
singer-sdk's ``validate_response`` and Airbyte's error-mapping table: status + body -> one of these classes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class Where:
    """Which shop, resource and record an error is about; rendered into every message."""

    side: str = ""  # "prestashop" | "dolibarr"
    shop: str = ""
    resource: str = ""
    record_id: str = ""
    field: str = ""

    def render(self) -> str:
        parts = [
            f"{name}={value}"
            for name, value in (
                ("side", self.side),
                ("shop", self.shop),
                ("resource", self.resource),
                ("id", self.record_id),
                ("field", self.field),
            )
            if value
        ]
        return " ".join(parts)


class SyncError(Exception):
    """Base of every error ps2doli raises on purpose."""

    retryable: bool = False

    def __init__(
        self, message: str, *, where: Where | None = None, status: int | None = None, body: str = ""
    ) -> None:
        self.message = message
        self.where = where or Where()
        self.status = status
        self.body = body
        super().__init__(self.__str__())

    def __str__(self) -> str:
        location = self.where.render()
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.message}{status}" + (f" [{location}]" if location else "")

    def at(self, **where: str) -> SyncError:
        """The same error with more context (shop, resource, record id, field) filled in."""
        merged = Where(**{**self.where.__dict__, **{k: v for k, v in where.items() if v}})
        clone = type(self)(self.message, where=merged, status=self.status, body=self.body)
        if isinstance(self, TransientError) and isinstance(clone, TransientError):
            clone.retry_after = self.retry_after
        return clone


class ConfigError(SyncError):
    """A setting is wrong or a side refuses our credentials: the admin must act."""


class TransientError(SyncError):
    """Try again later: nothing was stored, nothing moves."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        where: Where | None = None,
        status: int | None = None,
        body: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, where=where, status=status, body=body)
        self.retry_after = retry_after


class BadResponse(TransientError):
    """The answer is not the JSON/XML asked for (an HTML page, a cut body). Quotes the first bytes."""


class AmbiguousWrite(TransientError):
    """A write may or may not have happened. Look the object up by ref_ext before retrying."""


class PermanentError(SyncError):
    """The other side refused this record; retrying the same payload will not help."""


class NotFound(SyncError):
    """The object does not exist."""


def first_bytes(body: bytes | str, limit: int = 120) -> str:
    """A printable excerpt of a body for error messages (never the whole page)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")


def redact(error: SyncError, secrets: tuple[str, ...]) -> SyncError:
    """The same error with every secret (an API key, a password) replaced by ``***`` in its message and body."""
    secrets = tuple(s for s in secrets if s)
    message, body = error.message, error.body
    for secret in secrets:
        message = message.replace(secret, "***")
        body = body.replace(secret, "***")
    if message == error.message and body == error.body:
        return error
    clone = type(error)(message, where=error.where, status=error.status, body=body)
    if isinstance(error, TransientError) and isinstance(clone, TransientError):
        clone.retry_after = error.retry_after
    return clone


def header(headers: Mapping[str, str], name: str) -> str:
    """A response header's value whatever the case of its name, ``""`` when it is absent."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return ""


def retry_after_seconds(value: str, *, now: float | None = None) -> float | None:
    """Retry-After in seconds from now (a number of seconds or an HTTP date); ``None`` if unreadable."""
    value = value.strip()
    if not value:
        return None
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
