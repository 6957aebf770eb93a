from __future__ import annotations

import os

import pytest

from config import Settings

os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")  # pyspark.pandas (via pyspark.testing) asks


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture
def tables_in_memory(monkeypatch: pytest.MonkeyPatch):
    """The stream app's tables in memory for this test only (Faust's test_context runs without a
    broker; a RocksDB store would be written under the working directory). Each table gets a
    memory store of its own, made afresh, and the one before back after, so no other test of the
    session gets (or gives this one) a store of the other kind."""
    from streams.app import app

    app.finalize()
    for table in app.tables.values():
        monkeypatch.setattr(table, "_store", "memory://")  # the table's own, over app.conf.store
        monkeypatch.setattr(table, "_data", None)  # Faust makes a table's store on first use
    yield


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: every test must run against the real stack."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") == "true" and skipped and session.exitstatus == 0:
        reporter.write_line(f"CI: {skipped} test(s) skipped; skips are failures here", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def spark(settings: Settings):
    """One SparkSession for the whole run, built by the product's own factory (Delta, S3A,
    JDBC jars): Spark keeps one session per process, so unit and integration tests share it.
    Pure-transform tests use it without touching any service. It holds MinIO's root keys: tests
    read and write scratch lakes, in buckets the stack's lake users may not touch."""
    from batch.session import build_session

    session = build_session(settings.model_copy(update={"spark_master": "local[2]"}), "tests", lake_role="root")
    yield session
    session.stop()
