"""Who may read the worker's web views (/orders, /stats, the dashboard: personal data once
orders are enriched).

Bound to loopback (the default, 127.0.0.1), anyone on the machine may. Bound beyond it
(`--web-bind 0.0.0.0`), every request must carry `Authorization: Bearer <WEB_TOKEN>` and is
answered 401 without it, whatever address it comes from; a worker bound so without a token
set refuses to start. Faust forwards a request for another worker's order with its headers,
and the dashboard and the order lists ask the other workers with the token: each only at a
trusted host (WEB_PEER_HOSTS, the worker's own, loopback by default), never at whatever
address a member of the consumer group announced.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection
from urllib.parse import urlsplit

from aiohttp import web
from faust.app.router import Router

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


def peer_hosts() -> list[str]:
    """WEB_PEER_HOSTS as a list (empty: loopback only)."""
    return [host.strip() for host in settings.web_peer_hosts.split(",") if host.strip()]


def trusted_peer(url: str, own_url: str, hosts: Collection[str]) -> bool:
    """Whether this worker may send its token to a member's announced `url`: its host is one of
    `hosts` (loopback when none), or this worker's own."""
    host = urlsplit(str(url)).hostname
    return host is not None and (host in (set(hosts) or LOOPBACK) or host == urlsplit(str(own_url)).hostname)


class TrustedRouter(Router):
    """Faust's router, forwarding a table view's request (its headers carry the token) only to
    an owner at a trusted host; any other is answered 502 naming the setting."""

    async def _route_req(self, dest_url, web, request):
        if not trusted_peer(str(dest_url), str(self.app.conf.canonical_url), peer_hosts()):
            return web.json({"error": f"the key's owner announced {dest_url}, not a trusted host: "
                                      "add its host to WEB_PEER_HOSTS if it is one of the workers"}, status=502)
        return await super()._route_req(dest_url, web, request)
