"""The local stack's credentials: made at random on its first `stack up`, kept in
`<STACK_HOME>/secrets.env` (readable by its owner only), read by the settings from there.

One principal per role, each with only what it needs:
- `orderpipe-guard` (Redis, REDIS_URL): the workers' claims, `order_trigger_lock:*` and
  `dead_letter_claim:*` only, with the few commands they send (GET, SET, the guard's scripts);
- `orderpipe-admin` (Redis, REDIS_ADMIN_URL): operators, benchmarks and tests (every command).

A variable set in the environment or `.env` wins over the file (a real deployment's secrets);
the file is never rewritten, so rotating a secret is: edit it (or delete it to make new ones),
then `python -m stack down` and `up`, and restart the workers.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from urllib.parse import unquote, urlsplit

from config.settings import STACK_SECRETS_FILE

GUARD_USER, ADMIN_USER = "orderpipe-guard", "orderpipe-admin"
# What the workers' Redis user may do: connect (the URL's db is a SELECT), claim, mark, and
# load the guard's scripts again after a Redis restart.
GUARD_RULES = ("resetkeys ~order_trigger_lock:* ~dead_letter_claim:* resetchannels -@all "
               "+auth +hello +ping +select +get +set +evalsha +eval +script|load")


def path(stack_home: Path) -> Path:
    return stack_home / STACK_SECRETS_FILE


def made(redis_host: str, redis_port: int) -> dict[str, str]:
    """New random credentials for every principal, as the variables the settings read."""
    def redis_url(user: str) -> str:
        return f"redis://{user}:{secrets.token_urlsafe(24)}@{redis_host}:{redis_port}/2"

    return {"REDIS_URL": redis_url(GUARD_USER), "REDIS_ADMIN_URL": redis_url(ADMIN_USER)}


def ensure(stack_home: Path, redis_host: str, redis_port: int) -> bool:
    """Write the stack's secrets file if it does not exist yet (owner-only); whether it did."""
    found = path(stack_home)
    if found.is_file():
        return False
    stack_home.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{name}={value}\n" for name, value in made(redis_host, redis_port).items())
    descriptor = os.open(found, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write("# Made by `python -m stack up`: this stack's credentials. Keep it private.\n" + text)
    return True


def redis_acl(guard_url: str, admin_url: str) -> str:
    """Redis's ACL file for these two URLs' users: no access without credentials, the guard's
    user limited to its keys and commands. Passwords are stored as their SHA-256."""
    def user(url: str, rules: str) -> str:
        parts = urlsplit(url)
        return f"user {parts.username} on #{hashlib.sha256(unquote(parts.password or '').encode()).hexdigest()} {rules}\n"

    admin = "" if urlsplit(admin_url).username == urlsplit(guard_url).username else user(admin_url, "~* &* +@all")
    return "user default off\n" + user(guard_url, GUARD_RULES) + admin
