"""Fixtures: real ``chainotel-analyzer serve`` processes (:mod:`tests.processes`) with chDB in
tmp_path, and the store of a stopped analyzer opened in-process."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.processes import Analyzer


@contextmanager
def open_db(data_dir: Path):
    """The store of a stopped analyzer, opened in this process (clickhouse-connect client)."""
    from chainotel_analyzer.settings import AnalyzerSettings
    from chainotel_analyzer.store.client import open_store

    store = open_store(AnalyzerSettings(clickhouse_url=f"chdb://{data_dir}"))
    try:
        yield store.client
    finally:
        store.close()


@pytest.fixture
def analyzer_factory(tmp_path: Path):
    """``factory(env=None, data_dir=None)`` → started Analyzer; all are stopped at teardown."""
    started: list[Analyzer] = []

    def factory(env: dict[str, str] | None = None, data_dir: Path | None = None) -> Analyzer:
        analyzer = Analyzer(data_dir or tmp_path / f"db{len(started)}", env)
        started.append(analyzer)
        return analyzer.start()

    yield factory
    for analyzer in started:
        analyzer.stop()
