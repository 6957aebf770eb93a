"""Private Faust, mode and aiokafka names are used only in streams/runtime/, and each one used
there is listed in its package docstring and in docs/architecture.md; PySpark's private names
only in batch/store/files.py's one helper."""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

from config.settings import REPO_ROOT

UPSTREAM = ("faust", "mode", "aiokafka")
RUNTIME = REPO_ROOT / "streams" / "runtime"
STREAM_PACKAGES = ("streams", "agents", "tables", "web", "config")
NAMEDTUPLE_API = {"_replace", "_asdict", "_fields", "_make", "_field_defaults"}


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)


def upstream_classes(klass: type) -> list[type]:
    return [k for k in klass.__mro__ if k.__module__.split(".")[0] in UPSTREAM]


def defined_upstream(name: str, bases: list[type]) -> bool:
    """Is `name` an attribute or method one of these upstream classes defines or assigns?"""
    for base in bases:
        if name in vars(base):
            return True
        if re.search(rf"self\.{re.escape(name)}\b", source_of(base)):
            return True
    return False


@functools.cache
def source_of(klass: type) -> str:
    try:
        return inspect.getsource(klass)
    except (OSError, TypeError):
        return ""


def private_upstream_names(path: Path) -> dict[str, int]:
    """The private upstream names a module uses, with a line each: attributes of objects not its
    own (`consumer._client`), and in its subclasses of upstream classes, the attributes and
    methods those classes define (`self._acked`, `super()._new_offset`, an overridden
    `_drain_messages`)."""
    tree = ast.parse(path.read_text())
    module = importlib.import_module(module_name(path))
    found: dict[str, int] = {}
    in_subclass: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        klass = getattr(module, node.name, None)
        bases = upstream_classes(klass) if isinstance(klass, type) else []
        if not bases:
            continue
        for inner in ast.walk(node):
            if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef)) and inner in node.body:
                candidates = [(inner.name, inner.lineno)]
            elif isinstance(inner, ast.Attribute) and is_own(inner.value):
                candidates = [(inner.attr, inner.lineno)]
                in_subclass.add(id(inner))
            else:
                continue
            for name, line in candidates:
                if is_private(name) and defined_upstream(name, bases):
                    found.setdefault(name, line)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and id(node) not in in_subclass and not is_own(node.value)
                and is_private(node.attr) and node.attr not in NAMEDTUPLE_API):
            found.setdefault(node.attr, node.lineno)
    return found


def is_own(value: ast.expr) -> bool:
    """`self`, `cls` or `super()`."""
    if isinstance(value, ast.Name):
        return value.id in ("self", "cls")
    return isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super"


def modules(*packages: str) -> list[Path]:
    return sorted(path for package in packages for path in (REPO_ROOT / package).rglob("*.py"))


SCAN = ("import json, sys; from pathlib import Path; import tests.unit.test_runtime_boundary as boundary; "
        "scan = getattr(boundary, sys.argv[1]); "
        "print(json.dumps({arg: scan(Path(arg)) for arg in sys.argv[2:]}, default=sorted))")


def scanned(paths: list[Path], scan: str = "private_upstream_names") -> dict[str, dict]:
    """`scan` (a function of this module) of each path, in a fresh interpreter: after some of the
    other tests in the same process, CPython 3.11's ast.parse can fail with "AST constructor
    recursion depth mismatch" (python/cpython#106905)."""
    done = subprocess.run([sys.executable, "-c", SCAN, scan, *map(str, paths)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_no_private_upstream_name_is_used_outside_the_runtime():
    paths = [path for path in modules(*STREAM_PACKAGES) if RUNTIME not in path.parents]
    outside = {str(Path(path).relative_to(REPO_ROOT)): sorted(names)
               for path, names in scanned(paths).items() if names}

    assert outside == {}


def test_every_private_name_the_runtime_uses_is_listed_in_its_docstring_and_the_architecture():
    used = {name for names in scanned(modules("streams/runtime")).values() for name in names}
    docstring = importlib.import_module("streams.runtime").__doc__ or ""
    architecture = (REPO_ROOT / "docs" / "architecture.md").read_text()

    assert {"_drain_messages", "_new_offset", "_ensure_producer", "_client"} <= used  # the scan sees them
    assert sorted(name for name in used if f"`{name}`" not in docstring and f".{name}`" not in docstring) == []
    assert sorted(name for name in used if f"{name}`" not in architecture) == []


def private_attributes_by_function(path: Path) -> dict[str, set[str]]:
    """The private attributes a module reads off objects not its own (`spark._jvm`), by the
    function that reads them."""
    found: dict[str, set[str]] = {}
    tree = ast.parse(path.read_text())
    for function in [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]:
        for node in ast.walk(function):
            if (isinstance(node, ast.Attribute) and is_private(node.attr) and not is_own(node.value)
                    and node.attr not in NAMEDTUPLE_API):
                found.setdefault(function.name, set()).add(node.attr)
    return found


def test_pyspark_s_private_names_are_reached_through_one_helper_of_the_lake():
    reached = {f"{Path(path).relative_to(REPO_ROOT)}:{function}": sorted(names)
               for path, by_function in scanned(modules("batch", "bench"), "private_attributes_by_function").items()
               for function, names in by_function.items()}

    assert reached == {"batch/store/files.py:driver_jvm": ["_jsc", "_jvm"]}
