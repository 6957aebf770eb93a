"""Collecting a test module changes nothing for the rest of the session: a module that swaps the
app's table store at import would hand every later test (unit ones too) that store."""

from __future__ import annotations

import importlib

from streams.app import app


def test_importing_the_completion_agents_tests_leaves_the_table_store_as_configured():
    configured = str(app.conf.store)

    importlib.import_module("tests.integration.test_completion_agent")

    assert str(app.conf.store) == configured == "rocksdb:"
