"""Which of the stack's secrets a process shows: in its arguments (anyone's `ps`) or its
environment (/proc/<pid>/environ)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import psutil

from config import Settings
from config.settings import PROCESS_CREDENTIALS, SECRET_VARIABLES


def stack_secrets(settings: Settings) -> dict[str, str]:
    """Every secret the settings hold, by variable (a URL's password for a URL)."""
    env = settings.as_env()
    found = {}
    for variable in SECRET_VARIABLES & set(env):
        value = unquote(urlsplit(env[variable]).password or "") if variable.endswith("_URL") else env[variable]
        if value:
            found[variable] = value
    return found


def without_secrets(environment: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in environment.items() if name not in SECRET_VARIABLES}


def forms(secret: str) -> set[str]:
    """A secret as it may be written: plain, percent-encoded (a URL), base64 (HTTP Basic, say)."""
    return {secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode().rstrip("=")}


def shown(text: str, secrets: dict[str, str]) -> set[str]:
    """The variables whose secret appears in `text`, in any of its `forms`."""
    return {variable for variable, value in secrets.items() if any(form in text for form in forms(value))}


def in_arguments(process: psutil.Process, secrets: dict[str, str]) -> set[str]:
    try:
        return shown("\0".join(process.cmdline()), secrets)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return set()


def in_environment(pid: int, secrets: dict[str, str]) -> set[str]:
    try:
        return shown(Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace"), secrets)
    except (FileNotFoundError, ProcessLookupError):
        return set()


def foreign(pid: int, process: str | None, secrets: dict[str, str]) -> set[str]:
    """The secrets in the environment of `pid` and its children that are not `process`'s own
    (PROCESS_CREDENTIALS; None: it may hold none)."""
    own = PROCESS_CREDENTIALS[process] if process else frozenset()
    family = [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
    return {variable for member in family for variable in in_environment(member, secrets)
            if variable not in own and secrets[variable] not in {secrets.get(o) for o in own}}
