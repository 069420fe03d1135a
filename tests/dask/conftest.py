"""Fixtures for the Dask executor: a real ``LocalCluster`` with two worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from dask_support import local_cluster


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dask: runs jobs on a Dask LocalCluster")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/dask/" in item.nodeid:
            item.add_marker(pytest.mark.dask)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    """Two single-threaded worker processes: two render nodes. Tests must leave it whole."""
    pytest.importorskip("distributed")
    with local_cluster() as two_workers:
        yield two_workers


@pytest.fixture(scope="session")
def client(cluster: Any) -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    # Not the default client: "--cluster auto" must find none unless a test makes one.
    with distributed.Client(cluster, set_as_default=False) as dask_client:
        yield dask_client
