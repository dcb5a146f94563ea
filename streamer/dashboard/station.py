"""The central station's clinical API beyond the live board: per-bed alarm settings, trends, alarm review, audit.

  GET  /api/settings?bed=ID      {"bed_id", "requested": record | null, "in_force": vitals echo | null,
                                  "conditions": [{name, priority, lethal, switchable, tunable}]}
  POST /api/settings             {"bed_id" (null + "unit": the unit's defaults), "hr_low_bpm", "hr_high_bpm",
                                  "disabled": [...], "onset_s": {...},
                                  "user"?} -> 202 the record; 400 with the reason (low >= high, outside 20-300 bpm,
                                  unknown condition, a lethal one switched off); 401 without a session; 403 other
                                  origin; 503 while the station is loading the settings or the broker refuses
  GET  /api/trend?bed=ID&hours=H&points=N   HR mean/min/max and the commonest rhythm per bucket
  GET  /api/review?bed=|unit=&hours=H&priority=high,medium[&format=csv]   alarm episodes, newest first
  GET  /api/audit?bed=|unit=&hours=H        settings changes and acknowledgements, newest first
The acting user is the authenticated one (basic auth), or the name the nurse typed (station token).
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streamer.alarms.config import DEFAULT_CONDITIONS
from streamer.contract import AuditRecord, BedId, BedSettings, Priority
from streamer.dashboard import auth
from streamer.dashboard.feed import ActionNotPublished, Feed
from streamer.dashboard.history import review_csv
from streamer.dashboard.keys import BOARD, FEED, IDENTITY, SETTINGS

MAX_POINTS = 1000


class SettingsRequest(BaseModel):
    """The body of POST /api/settings (what the page's settings form sends)."""

    model_config = ConfigDict(extra="forbid")

    bed_id: BedId | None = Field(None, description="null: the defaults of `unit` (beds without their own)")
    unit: str | None = Field(None, max_length=64, description="with bed_id null: the care unit")
    hr_low_bpm: float
    hr_high_bpm: float
    disabled: list[str] = Field(default_factory=list, max_length=32)
    onset_s: dict[str, float] = Field(default_factory=dict)
    user: str | None = Field(None, max_length=64, description="the acting clinician (required with a token)")


def register(app: web.Application) -> None:
    app.router.add_get("/api/settings", settings_view)
    app.router.add_post("/api/settings", change_settings)
    app.router.add_get("/api/trend", trend)
    app.router.add_get("/api/review", review)
    app.router.add_get("/api/audit", audit)


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)


def _feed(request: web.Request) -> Feed:
    return request.app[FEED]


def _bad(reason: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": reason}), content_type="application/json")


def _conditions() -> list[dict[str, Any]]:
    rows = []
    for name, cfg in DEFAULT_CONDITIONS.items():
        lethal = cfg.priority is Priority.high and cfg.latching
        tunable = cfg.priority in (Priority.medium, Priority.low)
        rows.append({"name": name, "priority": cfg.priority.value, "lethal": lethal, "switchable": not lethal,
                     "tunable": tunable, "onset_s": cfg.onset_s})  # fmt: skip
    return rows


def _span_ms(request: web.Request) -> int:
    """The hours asked for (`?hours=`, default 8), in ms."""
    try:
        hours = float(request.query.get("hours", "8"))
    except ValueError:
        raise _bad("hours must be a number") from None
    if not 0 < hours <= 72:
        raise _bad("hours must be in (0, 72]")
    return int(hours * 3_600_000)


def _since_ms(request: web.Request) -> int:
    return time.time_ns() // 1_000_000 - _span_ms(request)


async def settings_view(request: web.Request) -> web.Response:
    bed_id = request.query.get("bed", "")
    feed = _feed(request)
    bed = request.app[BOARD].known_bed(bed_id)
    record = feed.book.record(bed_id, bed.unit if bed else None)
    in_force = bed.vitals.settings if bed is not None and bed.vitals is not None else None
    return web.json_response({
        "bed_id": bed_id,
        "requested": None if record is None else record.model_dump(mode="json", exclude_none=True),
        "in_force": None if in_force is None else in_force.model_dump(mode="json", exclude_none=True),
        "defaults": {"hr_low_bpm": feed.book.default_limits.low_bpm, "hr_high_bpm": feed.book.default_limits.high_bpm},
        "conditions": _conditions(),
    })  # fmt: skip


async def change_settings(request: web.Request) -> web.Response:
    if (refusal := auth.refuse_foreign_json(request, request.app[SETTINGS], "settings change")) is not None:
        return refusal
    try:
        body = SettingsRequest.model_validate_json(await request.read())
    except ValidationError as error:
        problem = error.errors()[0]
        return _error(400, f"bad settings: {'.'.join(map(str, problem['loc']))}: {problem['msg']}")
    identity = request[IDENTITY]
    user = (body.user or "").strip() if identity == auth.TOKEN_IDENTITY else identity
    if not user:
        return _error(400, "enter your name: the station token does not say who changed the settings")
    feed = _feed(request)
    bed = request.app[BOARD].known_bed(body.bed_id) if body.bed_id is not None else None
    unit = bed.unit if bed is not None else body.unit
    try:
        record = BedSettings(
            bed_id=body.bed_id, unit=unit, hr_low_bpm=body.hr_low_bpm, hr_high_bpm=body.hr_high_bpm,
            disabled=sorted(set(body.disabled)), onset_s=body.onset_s, user=user,
        )  # fmt: skip
    except ValidationError as error:
        return _error(400, f"invalid settings: {error.errors()[0]['msg'].removeprefix('Value error, ')}")
    if not feed.records_caught_up:
        return _error(503, "the station is still loading the settings in force; try again in a moment")
    old = feed.book.record(body.bed_id, unit) if body.bed_id is not None else feed.book.record(record.key)
    audit = AuditRecord(
        kind="settings", bed_id=body.bed_id, unit=unit, user=user, time_ns=record.time_ns,
        old=None if old is None else _settings_fields(old), new=_settings_fields(record),
    )  # fmt: skip
    try:
        await feed.publish((feed.topics.bed_settings, record.key, record), (feed.topics.audit, record.key, audit))
    except ActionNotPublished as error:
        return _error(503, f"{error}; the settings were NOT changed, try again")
    feed.book.apply(record)
    return web.json_response(record.model_dump(mode="json", exclude_none=True), status=202)


def _settings_fields(record: BedSettings) -> dict[str, Any]:
    return record.model_dump(mode="json", include={"hr_low_bpm", "hr_high_bpm", "disabled", "onset_s"})


async def trend(request: web.Request) -> web.Response:
    bed_id = request.query.get("bed")
    if not bed_id:
        return _error(400, "name the bed: ?bed=ID")
    since = _since_ms(request)
    try:
        points = min(MAX_POINTS, max(10, int(request.query.get("points", "240"))))
    except ValueError:
        return _error(400, "points must be a whole number")
    span_ms = _span_ms(request)  # not now - since from a second clock reading: a ms later, the width is wrong
    width, series = _feed(request).trends.series(bed_id, since, None, points, span_ms=span_ms)
    return web.json_response({"bed_id": bed_id, "bucket_ms": width, "since_ms": since, "points": series})


async def review(request: web.Request) -> web.Response:
    priorities = {p for p in request.query.get("priority", "").split(",") if p}
    unknown = priorities - {p.value for p in Priority}
    if unknown:
        return _error(400, f"unknown priority {sorted(unknown)}; known: high, medium, low, technical")
    rows = _feed(request).alarm_log.rows(
        since_ms=_since_ms(request), bed_id=request.query.get("bed") or None, unit=request.query.get("unit") or None,
        priorities=priorities or None,
    )  # fmt: skip
    if request.query.get("format") == "csv":
        scope = request.query.get("bed") or request.query.get("unit") or "all"
        return web.Response(
            text=review_csv(rows), content_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="alarms-{scope}.csv"'},
        )  # fmt: skip
    return web.json_response({"rows": rows})


async def audit(request: web.Request) -> web.Response:
    records = _feed(request).audit.query(
        since_ms=_since_ms(request), bed_id=request.query.get("bed") or None, unit=request.query.get("unit") or None
    )
    return web.json_response({"records": records})
