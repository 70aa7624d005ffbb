"""UTC timestamps: written in UTC with their offset whatever the machine's time zone, read
back as instants (old local-time records included), ordered by instant, not by string."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone

import pytest

from gtbench.results.timestamps import parse_timestamp, timestamp_key, utc_now

ZONES = ["UTC", "Asia/Tokyo", "America/Los_Angeles", "Australia/Adelaide"]


@pytest.fixture
def zone(request, monkeypatch):
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("zone", ZONES, indirect=True)
def test_written_in_utc_with_offset_in_any_time_zone(zone) -> None:
    stamp = utc_now()
    assert stamp.endswith("+00:00") and "T" in stamp
    parsed = parse_timestamp(stamp)
    assert abs(parsed.timestamp() - datetime.now(timezone.utc).timestamp()) < 5
    # what records wrote before: local time with a +HHMM offset, the same instant
    legacy = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    assert abs(timestamp_key(legacy) - parsed.timestamp()) < 5, (zone, legacy, stamp)


def test_old_and_new_forms_read_as_the_same_instant() -> None:
    instant = datetime(2026, 12, 6, 3, 30, 52, tzinfo=timezone.utc)
    for text in (
        "2026-12-06T12:30:52+0900",  # an old record from Tokyo
        "2026-12-05T19:30:52-0800",  # an old record from Los Angeles
        "2026-12-06T03:30:52+00:00",
        "2026-12-06T03:30:52Z",
        "2026-12-06T03:30:52",  # no offset: read as UTC
    ):
        assert parse_timestamp(text) == instant, text
    for missing in ("", None, "yesterday", 12):
        assert parse_timestamp(missing) is None
        assert timestamp_key(missing) == float("-inf")


def test_order_is_by_instant_not_by_string() -> None:
    tokyo, los_angeles = "2027-01-02T10:00:00+0900", "2027-01-01T20:00:00-0800"
    assert tokyo > los_angeles  # the string order the tables used
    assert timestamp_key(los_angeles) > timestamp_key(tokyo)  # 04:00 UTC after 01:00 UTC


def test_superseding_follows_the_instant(tmp_path, monkeypatch) -> None:
    """Of two records of the same configuration, the one finished later in UTC supersedes
    the other, whichever machine's local time each carries."""
    from gtbench.plan import identity
    from gtbench.results import records

    monkeypatch.setattr(records, "staleness", lambda record, installed: None)
    monkeypatch.setattr(identity, "same_configuration", lambda old, new: True)
    monkeypatch.setattr(identity, "difference", lambda old, new: "moved")
    monkeypatch.setattr(identity, "cell_key", lambda record: "one")
    monkeypatch.setattr(records, "kept_stale", lambda results_dir: [])
    made = [
        {"run_id": "tokyo", "status": "ok", "finished_at": "2027-01-02T10:00:00+0900"},
        {"run_id": "la", "status": "ok", "finished_at": "2027-01-01T20:00:00-0800"},
    ]
    reasons = records.stale_reasons(tmp_path, made)
    assert set(reasons) == {"tokyo"} and "superseded by la" in reasons["tokyo"]


def test_runner_writes_utc(tmp_path) -> None:
    from tests.helpers import FAST, gtbench

    previous = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    try:
        result = gtbench("run", *FAST, "--methods", "source-only", results=tmp_path)
    finally:
        if previous is None:
            os.environ.pop("TZ")
        else:
            os.environ["TZ"] = previous
        time.tzset()
    assert result.exit_code == 0, result.output
    import json

    (path,) = tmp_path.glob("runs/*/record.json")
    record = json.loads(path.read_text())
    for key in ("started_at", "finished_at"):
        assert record[key].endswith("+00:00"), record[key]
    assert timestamp_key(record["finished_at"]) >= timestamp_key(record["started_at"])
