# mypy: disallow-untyped-calls=False
# (distributed leaves some of its public methods unannotated.)
"""``DaskExecutor``: run a job's tasks on a Dask cluster, each Dask worker acting as a render node.

``run_job(template, executor=DaskExecutor(client))`` gives the same ``JobResult`` as a local
run; the ``worker`` column names the Dask worker. ``dask[distributed]`` is an optional extra
(``pip install 'openjd-notebook[dask]'``): it is imported when an executor is made, never
before. How a run uses the cluster is in ``dask_run`` (client side) and ``dask_plugin``
(worker side).

A Dask cluster runs whatever its clients send: on a shared cluster, use TLS ``Security``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..sessions import PathMappingRule
from .errors import JobsError
from .events import Event, EventSink, RunEnded
from .executor import ExecutorRun
from .node import RunContext
from .path_mapping import PathMappingInput, load_path_mapping_rules

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["AUTO", "ClusterError", "DaskExecutor", "executor_for_cluster"]

AUTO = "auto"
"""As the cluster address: the Dask client already made in this process."""

_INSTALL_HINT = "pip install 'openjd-notebook[dask]'"
_LOG = logging.getLogger(__name__)


class ClusterError(JobsError, RuntimeError):
    """A Dask cluster that cannot run the job: not reachable, not found, or mismatched."""


class DaskExecutor:
    """Run tasks on a Dask cluster: one resident session per busy worker thread and run.

    ``client_or_address`` is a ``distributed.Client``, a scheduler address (the executor then
    owns its client: ``close()`` it, or use the executor as a context manager), or ``"auto"``
    for the client already made in this process. ``resources`` (e.g. ``{"openjd": 1}`` with
    workers started with ``--resources openjd=1``) makes each worker one node however many
    threads it has. ``max_nodes`` caps how many tasks run at once. ``path_mapping_rules``
    replace the run's rules on the workers (their paths may differ from the client's).

    Making one checks the cluster: ``ClusterError`` when Dask is missing, no client is found,
    the scheduler cannot be reached, or a worker's versions differ from this process's.
    """

    def __init__(
        self,
        client_or_address: Client | str,
        *,
        resources: Mapping[str, float] | None = None,
        max_nodes: int | None = None,
        path_mapping_rules: PathMappingInput = None,
        log_flush_s: float = 0.05,
        connect_timeout_s: float = 10.0,
    ) -> None:
        if max_nodes is not None and max_nodes < 1:
            raise ValueError(f"max_nodes must be at least 1, got {max_nodes}")
        if log_flush_s <= 0:
            raise ValueError(f"log_flush_s must be positive, got {log_flush_s}")
        self._rules: list[PathMappingRule] | None = (
            None if path_mapping_rules is None else load_path_mapping_rules(path_mapping_rules)
        )
        self.resources = dict(resources) if resources else None
        self.max_nodes = max_nodes
        self.log_flush_s = log_flush_s
        self._client, self._owns_client = _connect(client_or_address, connect_timeout_s)
        self._checked_clients: set[str] = set()
        self._lock = threading.Lock()
        try:
            self._check_versions()
        except BaseException:
            self.close()
            raise

    @property
    def client(self) -> Client:
        return self._client

    def open(self, context: RunContext, events: EventSink) -> ExecutorRun:
        from .dask_run import DaskRun

        if self._client.status in ("closing", "closed"):
            raise ClusterError("this DaskExecutor's Dask client is closed")
        self._check_versions()
        # Workers use their own session root; the client's paths mean nothing there.
        rules = self._rules if self._rules is not None else context.path_mapping_rules
        context = replace(context, session_root=None, path_mapping_rules=rules)
        return DaskRun(
            self._client,
            context,
            events,
            capacity=self._capacity(),
            resources=self.resources,
            flush_s=self.log_flush_s,
        )

    def close(self) -> None:
        """Close the client this executor made from an address; idempotent, any thread."""
        if self._owns_client:
            self._client.close()

    def close_on_end(self, event: Event) -> None:
        """A run subscriber that closes this executor when the run ends (``on_event=``)."""
        if isinstance(event, RunEnded):
            self.close()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"DaskExecutor({_address(self._client)!r}, resources={self.resources!r}, "
            f"max_nodes={self.max_nodes!r})"
        )

    # ---- helpers --------------------------------------------------------------------------

    def _capacity(self) -> int:
        """How many tasks to keep in flight.

        One more per node than it runs, so each node finds its next task already waiting
        when one ends (Dask's round trip is about 10 ms). Not when ``max_nodes`` is below the
        cluster's slots: Dask would then start the extra tasks on the idle threads.
        """
        workers = self._client.scheduler_info()["workers"].values()
        slots = sum(_slots(worker, self.resources) for worker in workers)
        if not slots:
            _LOG.warning(
                "openjd-notebook: no Dask worker can take a task now%s; tasks wait for one",
                f" (none offers {self.resources})" if self.resources else "",
            )
        if self.max_nodes is not None and (slots == 0 or self.max_nodes < slots):
            return self.max_nodes
        return 2 * slots if slots else 1

    def _check_versions(self) -> None:
        with self._lock:
            if self._client.id in self._checked_clients:
                return
        check_versions(self._client)
        with self._lock:
            self._checked_clients.add(self._client.id)


def _address(client: Client) -> str | None:
    scheduler = client.scheduler
    return None if scheduler is None else str(scheduler.address)


def _slots(worker: Mapping[str, Any], resources: Mapping[str, float] | None) -> int:
    """How many tasks a worker runs at once: its threads, or what its resources allow."""
    if not resources:
        return int(worker.get("nthreads", 1))
    available = worker.get("resources") or {}
    return min(int(available.get(name, 0) // amount) for name, amount in resources.items())


def _connect(client_or_address: Client | str, timeout_s: float) -> tuple[Client, bool]:
    """The client to use and whether this executor owns it."""
    try:
        from distributed import Client, default_client
    except ImportError as error:
        raise ClusterError(f"Dask is not installed: {_INSTALL_HINT}") from error
    if isinstance(client_or_address, Client):
        return client_or_address, False
    if client_or_address == AUTO:
        try:
            return default_client(), False
        except ValueError as error:
            raise ClusterError(
                "--cluster auto found no Dask client in this process. Make one first "
                "(from distributed import Client; client = Client(...)), "
                "or give the scheduler's address."
            ) from error
    try:
        client = Client(client_or_address, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        raise ClusterError(
            f"Could not connect to the Dask scheduler at {client_or_address!r} within "
            f"{timeout_s:g} s: {error}"
        ) from error
    return client, True


def check_versions(client: Client) -> None:
    """Raise ``ClusterError`` unless every worker has the client's versions of the packages
    the run depends on; the message names both versions."""
    from .dask_plugin import node_versions

    local = local_versions()
    answers = client.run(node_versions, on_error="return")
    for address in sorted(answers):
        remote = answers[address]
        if isinstance(remote, BaseException):
            raise ClusterError(
                f"Worker {address} cannot run openjd-notebook ({type(remote).__name__}: "
                f"{remote}). Install openjd-notebook {local['openjd-notebook']} there."
            )
        for package, version in local.items():
            theirs = remote.get(package)
            if theirs != version:
                raise ClusterError(
                    f"Version mismatch: {package} {version or 'is not installed'} on this "
                    f"client but {theirs or 'not installed'} on worker {address}. Install the "
                    "same version on the client and on every worker."
                )


def local_versions() -> dict[str, str | None]:
    """This process's versions of what must match on the workers."""
    from .dask_plugin import node_versions

    return node_versions()


def executor_for_cluster(address: str, nodes: int | None = None) -> DaskExecutor:
    """The executor for ``--cluster ADDRESS|auto [--nodes N]`` (magics and CLI).

    Raises ``ClusterError`` at once when Dask is missing, ``auto`` finds no client, the
    scheduler cannot be reached, or the workers' versions differ. It owns the client it made
    from an address: close it when the run ends (``on_event=executor.close_on_end``).
    """
    return DaskExecutor(address, max_nodes=nodes)
