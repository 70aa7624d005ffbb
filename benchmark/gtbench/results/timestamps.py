"""When something happened, as records write and tables order it.

Every timestamp gtbench writes is UTC in ISO 8601 with its offset
(``2026-12-06T12:30:52+00:00``), and every ordering reads the instant back
(:func:`parse_timestamp`), never the string: records made on machines in other time zones
(a cluster's nodes, a laptop that travels) order by when they happened. Records written
before this rule hold local time with a ``+HHMM`` offset (``time.strftime('%z')``); they
parse to the same instants. A string without an offset is read as UTC.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

__all__ = ["parse_timestamp", "timestamp_key", "utc_now"]


def utc_now() -> str:
    """Now, UTC, ISO 8601 with offset, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def parse_timestamp(value: object) -> datetime | None:
    """The instant ``value`` names (timezone-aware, UTC), or None when it names none."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def timestamp_key(value: object) -> float:
    """Seconds since the epoch for sorting; a missing or unreadable time sorts first."""
    parsed = parse_timestamp(value)
    return -math.inf if parsed is None else parsed.timestamp()
