"""The rooms of docs/architecture.md import only what its layout table says they may."""

from __future__ import annotations

import ast
import re

from config.settings import REPO_ROOT

ROW = re.compile(r"^\| `(?P<room>[a-z]+)/` \|.*\| (?P<may>[^|]*) \|$")


def allowed_imports() -> dict[str, set[str]]:
    """room -> the rooms it may import, read from the layout table ("everything": all)."""
    rows = [ROW.match(line) for line in (REPO_ROOT / "docs" / "architecture.md").read_text().splitlines()]
    table = {row["room"]: row["may"] for row in rows if row}
    rooms = set(table)
    allowed = {}
    for room, may in table.items():
        named = set(re.findall(r"[a-z]+", may)) & rooms
        allowed[room] = rooms - {room} - named if "everything" in may else named  # "everything but ..."
    return allowed


def imported_rooms(room: str, rooms: set[str]) -> dict[str, set[str]]:
    """Each room `room`'s modules import, with the modules that do."""
    found: dict[str, set[str]] = {}
    for path in (REPO_ROOT / room).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in rooms and top != room:
                    found.setdefault(top, set()).add(str(path.relative_to(REPO_ROOT)))
    return found


def test_the_layout_table_names_every_room_and_what_it_may_import():
    allowed = allowed_imports()

    assert {"config", "streams", "tables", "agents", "batch", "source", "cdc", "stack", "demo", "bench",
            "tests"} <= set(allowed)
    assert allowed["config"] == set() and allowed["tables"] == {"streams", "config"}


def test_every_room_imports_only_what_the_layout_allows():
    allowed = allowed_imports()
    rooms = set(allowed)
    breaches = {room: {other: sorted(modules) for other, modules in imported_rooms(room, rooms).items()
                       if other not in allowed[room]}
                for room in sorted(rooms) if (REPO_ROOT / room).is_dir()}

    assert {room: found for room, found in breaches.items() if found} == {}


def test_nothing_in_the_product_imports_the_tests_or_the_benchmarks():
    allowed = allowed_imports()

    assert [room for room, may in allowed.items() if room not in ("tests", "bench") and may & {"tests", "bench"}] == []
    assert "tests" not in allowed["bench"]
