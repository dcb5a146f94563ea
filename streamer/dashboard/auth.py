"""Who is asking: a shared station token (cookie or Bearer) or HTTP basic auth, from `DashboardSettings`.

The page is opened once as ``/?token=...``; the server answers with an HttpOnly, SameSite=Strict session
cookie (a keyed hash of the token, not the token) and redirects to a URL without the token, so it does not
linger in history. The event stream and the action endpoint then authenticate by that cookie, by
``Authorization: Bearer <token>`` (programs) or by basic auth. Anything else gets 401.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from aiohttp import web

from streamer.dashboard.settings import DashboardSettings

COOKIE = "enecg_session"
TOKEN_IDENTITY = "station-token"  # identity of a token holder; the acting nurse names themself per action


def session_cookie_value(settings: DashboardSettings) -> str | None:
    if settings.token is None:
        return None
    key = settings.token.get_secret_value().encode()
    return hmac.new(key, b"enecg-dashboard-session", hashlib.sha256).hexdigest()


def token_matches(settings: DashboardSettings, candidate: str | None) -> bool:
    if settings.token is None or not candidate:
        return False
    return hmac.compare_digest(candidate.encode(), settings.token.get_secret_value().encode())


def identify(request: web.Request, settings: DashboardSettings) -> str | None:
    """The authenticated identity (basic-auth user name or TOKEN_IDENTITY), or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and token_matches(settings, value.strip()):
        return TOKEN_IDENTITY
    if scheme.lower() == "basic" and settings.user is not None and settings.password is not None:
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        good_user = hmac.compare_digest(user.encode(), settings.user.encode())
        good_password = hmac.compare_digest(password.encode(), settings.password.get_secret_value().encode())
        return user if good_user and good_password else None
    expected = session_cookie_value(settings)
    cookie = request.cookies.get(COOKIE)
    if expected is not None and cookie and hmac.compare_digest(cookie.encode(), expected.encode()):
        return TOKEN_IDENTITY
    return None


def challenge_headers(settings: DashboardSettings) -> dict[str, str]:
    return {"WWW-Authenticate": 'Basic realm="EnECG central station"'} if settings.user else {}


def refuse_foreign_json(request: web.Request, settings: DashboardSettings, what: str) -> web.Response | None:
    """A 403 for a POST from another origin (the page's own: the configured public one behind a TLS proxy, else
    this server's), a 415 for a body that is not JSON; None when the request may go on. Every state-changing
    handler asks this first."""
    origin = request.headers.get("Origin")
    own = settings.public_origin or f"{request.scheme}://{request.host}"
    if origin is not None and origin != own:
        return web.json_response({"error": f"cross-origin {what} refused (from {origin[:100]})"}, status=403)
    if request.content_type != "application/json":
        return web.json_response({"error": f"send the {what} as application/json"}, status=415)
    return None
