"""Who may read the worker's web views (/orders, /stats, the dashboard: personal data once
orders are enriched).

Bound to loopback (the default, 127.0.0.1), anyone on the machine may. Bound beyond it
(`--web-bind 0.0.0.0`), every request must carry `Authorization: Bearer <WEB_TOKEN>` and is
answered 401 without it, whatever address it comes from; a worker bound so without a token
set refuses to start. Faust forwards a request for another worker's order with its headers,
and the dashboard and the order lists ask the other workers with the token.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from config import settings

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


class UnsafeWebBind(RuntimeError):
    """Bound beyond loopback with no token to ask for."""


def check_bind(bind: str, token: str | None) -> None:
    if bind not in LOOPBACK and not token:
        raise UnsafeWebBind(f"the web server is bound to {bind} and would serve customers' names and emails to "
                            "anyone who can reach it: set WEB_TOKEN (requests then need `Authorization: Bearer "
                            "<token>`), or bind to 127.0.0.1 (`--web-bind 127.0.0.1`)")


def token_required(bind: str, token: str | None) -> bool:
    return bind not in LOOPBACK and bool(token)


def authorized(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def bearer_middleware(bind_of, token: str | None):
    """An aiohttp middleware; `bind_of()` answers the address bound (known once the CLI ran)."""

    @web.middleware
    async def require_token(request: web.Request, handler):
        if token_required(bind_of(), token) and not authorized(request.headers.get("Authorization"), token):
            return web.json_response({"error": "missing or wrong bearer token (Authorization: Bearer <WEB_TOKEN>)"},
                                     status=401, headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return require_token


def auth_headers(token: str | None) -> dict[str, str]:
    """For asking another worker."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def web_token() -> str | None:
    """The token every request must carry beyond loopback (WEB_TOKEN), if set."""
    return settings.web_token.get_secret_value() if settings.web_token else None
