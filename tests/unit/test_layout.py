"""The rooms of docs/architecture.md import only what its layout table says they may."""

from __future__ import annotations

import ast
import graphlib
import re

import pytest

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


def test_the_stream_runtime_is_below_the_app_it_runs():
    """streams/runtime/ is the machinery the app is built on: what it needs of the app
    (the dead-letter topic, for one) is handed to it, never imported."""
    runtime = REPO_ROOT / "streams" / "runtime"
    above = {f"streams.{module}" for module in ("app", "topics", "__main__", "rebuild", "dead_letters", "broker_metrics")}
    reaching_up = {str(path.relative_to(REPO_ROOT)): sorted(imported & above) for path in runtime.rglob("*.py")
                   if (imported := modules_imported(path)) & above}

    assert reaching_up == {}
    assert modules_imported(REPO_ROOT / "tables" / "reference_data.py") >= {"streams.topics"}  # the check sees imports


def test_every_page_a_worker_serves_lives_in_web():
    pages = {str(path.relative_to(REPO_ROOT)) for room in ("streams", "tables", "agents", "web")
             for path in (REPO_ROOT / room).rglob("*.py") if "app.page(" in path.read_text()}

    assert pages and {page.split("/")[0] for page in pages} == {"web"}, sorted(pages)


@pytest.mark.parametrize("room", ["agents", "streams", "tables", "web", "batch"])
def test_no_module_imports_itself_back_through_others(room):
    """Within a room, imports (type-only ones too) go one way: a circle would leave a reader
    unable to tell which layer sits on which."""
    modules = {".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__"): path
               for path in (REPO_ROOT / room).rglob("*.py")}
    graph = {name: modules_imported(path) & set(modules) - {name} for name, path in modules.items()}

    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the circle


def modules_imported(path) -> set[str]:
    """Every module `path` imports by absolute name (`from streams import topics`: streams and streams.topics)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


# Module state in the stream's packages: Faust's own declarations stay at module level as
# Faust intends; whatever else a worker keeps belongs to its CompletionWorker (agents.completion_worker)
# or its app (the output topics' readiness).
STATELESS_PACKAGES = ("agents", "tables", "web", "streams/topics.py")


def allowed_module_global(name: str, value: object) -> bool:
    """A Faust declaration (table, agent, topic), a logger, an immutable value, or an UPPER_CASE
    constant table of immutable values (options read at import, never written)."""
    import logging
    from enum import Enum
    from types import GenericAlias, MappingProxyType

    from faust.stores.rocksdb import RocksDBOptions
    from faust.types import AgentT, CollectionT, TopicT

    def immutable(item: object) -> bool:
        if isinstance(item, (tuple, frozenset)):
            return all(immutable(inner) for inner in item)
        return isinstance(item, (int, float, str, bytes, type(None), MappingProxyType, type, GenericAlias,
                                 re.Pattern, Enum))

    if isinstance(value, (AgentT, CollectionT, TopicT, logging.Logger)) or immutable(value):
        return True
    if name.isupper() and isinstance(value, dict):
        return all(immutable(key) and immutable(item) for key, item in value.items())
    return name.isupper() and isinstance(value, RocksDBOptions)


def module_globals(package: str) -> dict[str, object]:
    """`module.name` -> value of every name a module of the package (or the one module) binds
    at module level by assignment (not by def, class or import)."""
    import importlib

    found = {}
    root = REPO_ROOT / package
    for path in [root] if root.is_file() else sorted(root.rglob("*.py")):
        module = importlib.import_module(".".join(path.relative_to(REPO_ROOT).with_suffix("").parts))
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
                if isinstance(node, ast.AnnAssign) else []
            for target in targets:
                if isinstance(target, ast.Name):
                    found[f"{module.__name__}.{target.id}"] = getattr(module, target.id)
    return found


def test_the_stream_packages_keep_no_state_at_module_level():
    from streams.app import app

    app.discover()  # every agent, table and view declared, as in a worker
    kept = {name: type(value).__name__ for package in STATELESS_PACKAGES
            for name, value in module_globals(package).items()
            if not allowed_module_global(name.rsplit(".", 1)[1], value)}

    assert kept == {}


def test_importing_the_stream_s_modules_changes_nothing_else():
    """No module of the stream's packages (or the app's) calls or patches anything at import
    beyond its own declarations: the app's consumer and producer are its constructor's, the
    worker's start-up steps its own (CompletionWorker.start_up_steps)."""
    acting = []
    for package in (*STATELESS_PACKAGES, "streams/app.py"):
        root = REPO_ROOT / package
        for path in [root] if root.is_file() else sorted(root.rglob("*.py")):
            for index, node in enumerate(ast.parse(path.read_text()).body):
                docstring = index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                patches = isinstance(node, ast.Assign) and not all(isinstance(target, (ast.Name, ast.Tuple))
                                                                   for target in node.targets)
                if (isinstance(node, ast.Expr) and not docstring) or patches:
                    acting.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}: {ast.unparse(node)[:60]}")

    assert acting == []


def test_the_module_state_check_tells_state_from_declarations():
    from collections import Counter

    from agents.alert_watch import AlertWatch
    from tables.order_progress import order_progress
    from web.dashboard_figures import RateMeter

    assert [allowed_module_global(name, value) for name, value in [
        ("watch", AlertWatch(1.0)), ("meter", RateMeter()), ("counts", Counter()), ("LISTED", {"a": []}),
        ("order_progress", order_progress), ("BATCH_MAX", 1000), ("KINDS", ("bulk", "stalled")),
        ("LISTED", {"a": frozenset({"b"})})]] == [False, False, False, False, True, True, True, True]


def test_each_rooms_docstring_names_every_module_it_holds():
    """A room's `__init__.py` says what each of its modules holds (the layout table says what the
    room holds and may import): README and docs/architecture.md link there instead of keeping lists."""
    rooms = [room for room in allowed_imports() if room != "tests" and (REPO_ROOT / room / "__init__.py").exists()]
    holds = {room: ast.get_docstring(ast.parse((REPO_ROOT / room / "__init__.py").read_text())) or ""
             for room in rooms}

    def named(room: str, module) -> bool:
        relative = module.relative_to(REPO_ROOT / room)
        if module.name == "__main__.py" and len(relative.parts) == 1:
            return "python -m" in holds[room]  # the room's command line
        folders = [f"`{'/'.join(relative.parts[:depth])}/`" for depth in range(1, len(relative.parts))]
        return f"`{module.name}`" in holds[room] or any(folder in holds[room] for folder in folders)

    unnamed = {room: sorted(str(module.relative_to(REPO_ROOT)) for module in (REPO_ROOT / room).rglob("*.py")
                            if module.name != "__init__.py" and not named(room, module))
               for room in rooms}

    assert len(rooms) >= 11
    assert {room: modules for room, modules in unnamed.items() if modules} == {}


def test_the_design_document_stays_readable():
    lines = (REPO_ROOT / "docs" / "architecture.md").read_text().splitlines()

    assert len(lines) <= 200
    assert [number for number, line in enumerate(lines, 1) if len(line) > 600] == []


def test_the_lake_s_layer_jobs_meet_only_in_shared_modules():
    """batch/layers/ holds one module per layer job: none imports another (batch.flows puts them
    in order, batch.names and batch.archive_reads hold what they share), and none imports a tool."""
    layers = {f"batch.layers.{path.stem}": path for path in (REPO_ROOT / "batch" / "layers").glob("*.py")
              if path.name != "__init__.py"}
    reaching = {name: sorted(imported) for name, path in layers.items()
                if (imported := {module for module in modules_imported(path) - {name}
                                 if module in layers or module.startswith("batch.tools")})}

    assert len(layers) >= 6 and reaching == {}
    assert modules_imported(REPO_ROOT / "batch" / "flows.py") >= set(layers)  # the check sees imports


def test_the_pages_read_the_worker_only_through_its_view():
    """web/ sees the completion worker as web.worker_view.WorkerView: no page reaches
    `app.completion` itself, and every part of the view is one the worker streams/app.py names has."""
    from streams.app import app
    from web.worker_view import WorkerView

    module, _, name = app.Completion.partition(":")
    source = ast.parse((REPO_ROOT / f"{module.replace('.', '/')}.py").read_text())
    [worker_class] = [node for node in source.body if isinstance(node, ast.ClassDef) and node.name == name]
    reaching = sorted(str(path.relative_to(REPO_ROOT)) for path in (REPO_ROOT / "web").rglob("*.py")
                      if "app.completion" in path.read_text() and path.name != "worker_view.py")
    viewed = {name for name in vars(WorkerView) if not name.startswith("_")}
    assignments = [node for node in ast.walk(worker_class) if isinstance(node, (ast.Assign, ast.AnnAssign))]
    targets = [target for node in assignments for target in getattr(node, "targets", [getattr(node, "target", None)])]
    built = {target.attr for target in targets
             if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self"}

    assert reaching == []
    assert viewed and viewed <= built, sorted(viewed - built)


# The commit protocol's parts, reached outside streams/runtime/ only through CommitProtocol.
PROTOCOL_PARTS = {"feed", "ack", "reread_uncommitted", "stuck_partitions", "send_changelog_batches",
                  "persist_offset", "put_local", "write_again", "forget"}


def test_the_commit_protocol_is_reached_only_through_its_object():
    """Outside streams/runtime/, nothing hands records over, acknowledges them, writes the
    changelog or asks for a re-read itself: following a record to its commit stays in the
    runtime and the agent loop's calls to CommitProtocol."""
    reaching = sorted(f"{path.relative_to(REPO_ROOT)}:{node.lineno} .{node.attr}"
                      for room in ("agents", "tables", "web", "streams")
                      for path in (REPO_ROOT / room).rglob("*.py") if "runtime" not in path.parts
                      for node in ast.walk(ast.parse(path.read_text()))
                      if isinstance(node, ast.Attribute) and node.attr in PROTOCOL_PARTS)

    assert reaching == []
