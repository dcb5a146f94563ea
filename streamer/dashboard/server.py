"""The dashboard's HTTP side (aiohttp): the page, a Server-Sent-Events stream, a snapshot and the actions.

Routes (all but /healthz need authentication, see `auth`):
  GET  /                 the central-station page (``?token=`` once, to start a session; ``?unit=ICU``)
  GET  /static/...       its JS and CSS
  GET  /api/events       SSE: ``snapshot`` first (every bed, every active alarm), then ``bed``, ``strip``,
                         ``status`` events; a ``ping`` event every few seconds keeps liveness visible
  GET  /api/snapshot     the same snapshot as JSON, for programs
  POST /api/actions      {"bed_id", "alert_id"?, "action": "acknowledge"|"pause_audio", "user"?} -> 202; 400 bad
                         body or blank user, 403 other origin, 404 unknown bed or alert, 409 alert already ended
  GET  /healthz          {"kafka", "ready"}; no data, no authentication
  /api/settings, /api/trend, /api/review, /api/audit: see `station`
Every response carries CSP, X-Frame-Options DENY, nosniff, no-referrer, and a Server header without versions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from importlib import resources
from typing import Any, Literal
from urllib.parse import quote

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from streamer.contract import AlertAction, AuditRecord, BedId
from streamer.dashboard import auth, station
from streamer.dashboard.board import BedState, Board
from streamer.dashboard.feed import ActionNotPublished, Feed
from streamer.dashboard.hub import Hub
from streamer.dashboard.keys import BOARD, FEED, HUB, IDENTITY, SETTINGS
from streamer.dashboard.logfmt import log_event
from streamer.dashboard.settings import DashboardSettings
from streamer.settings import KafkaSettings, TopicSettings

log = logging.getLogger(__name__)
STATIC = resources.files("streamer.dashboard") / "static"
PUBLIC = frozenset({"/healthz"})


class ActionRequest(BaseModel):
    """The body of POST /api/actions (what the page sends)."""

    model_config = ConfigDict(extra="forbid")

    bed_id: BedId
    alert_id: str | None = Field(None, max_length=64)
    action: Literal["acknowledge", "pause_audio"]
    user: str | None = Field(None, max_length=64, description="the acting clinician (required with a token)")

    @field_validator("user")
    @classmethod
    def _names_someone(cls, user: str | None) -> str | None:
        if user is not None and not user.strip():
            raise ValueError("user is blank: name the acting clinician")
        return user.strip() if user is not None else None


def create_app(settings: DashboardSettings, kafka: KafkaSettings, topics: TopicSettings) -> web.Application:
    app = web.Application(middlewares=[_auth_middleware])
    app.on_response_prepare.append(_security_headers)  # every response, the SSE stream and errors included
    app[SETTINGS] = settings
    app[BOARD] = Board(settings.history_per_bed, settings.unit)
    app[HUB] = Hub(settings.client_queue)
    app[FEED] = Feed(app[BOARD], app[HUB], kafka, topics, settings)
    app.router.add_get("/", _page)
    app.router.add_get("/static/{name}", _static)
    app.router.add_get("/api/events", _events)
    app.router.add_get("/api/snapshot", _snapshot)
    app.router.add_post("/api/actions", _action)
    app.router.add_get("/healthz", _health)
    station.register(app)  # settings, trends, alarm review, audit
    app.on_shutdown.append(_close_streams)  # before aiohttp waits for open handlers: SSE ones never end alone
    app.cleanup_ctx.append(_run_feed)
    return app


async def _run_feed(app: web.Application) -> Any:
    task = asyncio.create_task(app[FEED].run(), name="dashboard-feed")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await app[FEED].close()


async def _close_streams(app: web.Application) -> None:
    app[HUB].close_all()


#: The page loads only its own script; inline styles stay allowed (the page sets a few), inline script does not.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Server": "EnECG",  # no product versions for a scanner to match
}


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


@web.middleware
async def _auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    if request.path in PUBLIC:
        return await handler(request)
    token = request.query.get("token")
    if request.method == "GET" and request.path == "/" and auth.token_matches(settings, token):
        unit = request.query.get("unit")
        response = web.Response(status=303, headers={"Location": "/" + (f"?unit={quote(unit)}" if unit else "")})
        response.set_cookie(
            auth.COOKIE, auth.session_cookie_value(settings) or "", httponly=True, samesite="Strict", path="/"
        )
        return response
    identity = auth.identify(request, settings)
    if identity is None:
        log_event(log, logging.WARNING, "unauthenticated_request", method=request.method, path=request.path)
        if request.path == "/":
            body = _read_static("login.html")
            return web.Response(
                status=401, text=body, content_type="text/html", headers=auth.challenge_headers(settings)
            )
        return web.json_response(
            {"error": "authentication required"}, status=401, headers=auth.challenge_headers(settings)
        )
    request[IDENTITY] = identity
    return await handler(request)


def _read_static(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


async def _page(request: web.Request) -> web.Response:
    return web.Response(
        text=_read_static("index.html"), content_type="text/html", headers={"Cache-Control": "no-store"}
    )


STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


async def _static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    suffix = name[name.rfind(".") :] if "." in name else ""
    if "/" in name or name.startswith(".") or suffix not in STATIC_TYPES or not (STATIC / name).is_file():
        raise web.HTTPNotFound()
    return web.Response(text=_read_static(name), content_type=STATIC_TYPES[suffix])


def _snapshot_body(app: web.Application, unit: str | None) -> dict[str, Any]:
    settings = app[SETTINGS]
    return {
        **app[FEED].status(),
        "server_ms": time.time_ns() // 1_000_000,
        "unit": unit,
        "stale_after_s": settings.stale_after_s,
        "pause_audio_s": settings.pause_audio_s,
        "needs_user_name": True,
        "identity": None,
        "beds": app[BOARD].snapshot(unit),
    }


def _unit(request: web.Request) -> str | None:
    return request.query.get("unit") or request.app[SETTINGS].unit


async def _snapshot(request: web.Request) -> web.Response:
    body = _snapshot_body(request.app, _unit(request))
    body["identity"] = request[IDENTITY]
    body["needs_user_name"] = request[IDENTITY] == auth.TOKEN_IDENTITY
    return web.json_response(body)


async def _events(request: web.Request) -> web.StreamResponse:
    app, unit = request.app, _unit(request)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    client = app[HUB].join(unit)  # join before the snapshot: later changes queue behind it, none are missed

    def snapshot() -> bytes:
        body = _snapshot_body(app, unit)
        body["identity"] = request[IDENTITY]
        body["needs_user_name"] = request[IDENTITY] == auth.TOKEN_IDENTITY
        return _sse("snapshot", json.dumps(body, separators=(",", ":")))

    log_event(log, logging.INFO, "stream_opened", clients=len(app[HUB].clients))
    try:
        await response.write(b"retry: 2000\n\n" + snapshot())
        while True:
            try:
                item = await asyncio.wait_for(client.queue.get(), app[SETTINGS].heartbeat_s)
            except TimeoutError:
                await response.write(_sse("ping", f'{{"server_ms":{time.time_ns() // 1_000_000}}}'))
                continue
            if item is None:
                break
            event, data = item
            await response.write(snapshot() if event == "resync" else _sse(event, data))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        app[HUB].leave(client)
        log_event(log, logging.INFO, "stream_closed", clients=len(app[HUB].clients), dropped=client.dropped)
    return response


def _sse(event: str, data: str) -> bytes:
    return f"event: {event}\ndata: {data}\n\n".encode()


async def _action(request: web.Request) -> web.Response:
    if (refusal := auth.refuse_foreign_json(request, request.app[SETTINGS], "action")) is not None:
        return refusal
    try:
        body = ActionRequest.model_validate_json(await request.read())
    except ValidationError as error:
        return web.json_response({"error": f"bad action: {error.errors()[0]['msg']}"}, status=400)
    identity = request[IDENTITY]
    user = body.user if identity == auth.TOKEN_IDENTITY and body.user else identity
    if user == auth.TOKEN_IDENTITY:
        return web.json_response({"error": "enter your name: the station token does not say who acted"}, status=400)
    app = request.app
    bed = app[BOARD].known_bed(body.bed_id)
    if bed is None:
        return web.json_response({"error": f"unknown bed {body.bed_id}"}, status=404)
    if body.action == "acknowledge" and body.alert_id is not None:
        refusal = _ack_refusal(bed, body.alert_id, app[FEED].caught_up)
        if refusal is not None:
            return web.json_response({"error": refusal[1]}, status=refusal[0])
    action = AlertAction(
        bed_id=body.bed_id,
        alert_id=body.alert_id,
        action=body.action,
        user=user,
        pause_s=app[SETTINGS].pause_audio_s if body.action == "pause_audio" else None,
    )
    audit = AuditRecord(
        kind=body.action, bed_id=body.bed_id, unit=bed.unit, user=user, time_ns=action.time_ns,
        alert_id=body.alert_id, old=_alarm_states(bed, body.alert_id),
        new={"action": body.action, **({"pause_s": action.pause_s} if action.pause_s else {})},
    )  # fmt: skip
    try:
        await app[FEED].publish_action(action, audit)
    except ActionNotPublished as error:
        return web.json_response({"error": f"{error}; the action was NOT recorded, try again"}, status=503)
    return web.json_response(json.loads(action.model_dump_json(exclude_none=True)), status=202)


def _alarm_states(bed: BedState, alert_id: str | None) -> dict[str, str]:
    """What the acknowledge acted on: alert_id -> its state then (one alarm, or every active one of the bed)."""
    return {a: al.alert.state.value for a, al in bed.alarms.items() if alert_id in (None, a)}


def _ack_refusal(bed: BedState, alert_id: str, caught_up: bool) -> tuple[int, str] | None:
    """Why an acknowledge of `alert_id` cannot be recorded (status, reason), or None if it can."""
    standing = bed.alarm_standing(alert_id)
    if standing == "active":
        return None
    if standing == "ended":
        return 409, f"alert {alert_id} on bed {bed.bed_id} has already ended: nothing to acknowledge"
    if not caught_up:
        return 503, "the dashboard is still loading the active alarms; try again in a moment"
    return 404, f"no alert {alert_id} on bed {bed.bed_id}"


async def _health(request: web.Request) -> web.Response:
    return web.json_response(request.app[FEED].status())
