"""Asking the app's other workers: who they are, and one GET each (with the token, if any).

For views that answer for the whole app (the dashboard, the order lists): every member is
asked at once with a short timeout, and one that does not answer is reported, not fatal; one
at a host the worker does not trust (streams.runtime.web_access.trusted_peer) is reported
without being asked.
"""

from __future__ import annotations

import aiohttp

from streams.app import app
from streams.runtime.web_access import auth_headers, peer_hosts, trusted_peer, web_token
from web.dashboard_figures import member_urls


def members() -> list[str]:
    """Every worker's web URL: this one's and each member the partition assignor knows."""
    return member_urls(str(app.conf.canonical_url), app.router.tables_metadata(),
                       app.router.external_topics_metadata())


async def ask(url: str, path: str, timeout_s: float, params: dict[str, str] | None = None) -> dict:
    """The member's JSON answer, or {"error": why}."""
    if not trusted_peer(url, str(app.conf.canonical_url), peer_hosts()):
        return {"error": "not a trusted host (WEB_PEER_HOSTS): not asked"}
    try:
        async with app.http_client.get(f"{url}{path}", params=params, headers=auth_headers(web_token()),
                                       timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            if response.status != 200:
                return {"error": f"HTTP {response.status}"}
            return await response.json()
    except Exception as error:  # noqa: BLE001 - one silent worker must not fail the page
        return {"error": f"{type(error).__name__}: {error}"[:200]}
