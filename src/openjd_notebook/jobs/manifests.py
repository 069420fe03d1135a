"""What went into a run and what came out: manifests of its PATH job parameters.

OpenJD already says which PATH parameters are read and written: ``dataFlow`` IN, OUT, INOUT or
NONE, and ``objectType`` FILE or DIRECTORY. Before the first task, every IN/INOUT parameter is
captured as an input manifest; after the run (whatever its end), every OUT/INOUT one as an output
manifest. A file is one entry; a directory is walked, each file an entry with its path relative
to the parameter's value. Each entry has size, modification time and SHA-256, hashed in parallel
threads while reading in blocks (hashlib releases the GIL on large updates). Files beyond the
hashing budget keep size and mtime only, marked "unhashed"; a path that does not exist is an
entry marked "missing", not an error.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "DEFAULT_HASH_BUDGET_BYTES",
    "MANIFEST_COLUMNS",
    "ManifestEntry",
    "ManifestProgressCallback",
    "PathParameter",
    "capture_manifest",
    "entries_from_json",
    "entries_json",
    "manifest_digest",
    "parse_byte_size",
    "path_parameters",
]

DEFAULT_HASH_BUDGET_BYTES = 64 * 1024**3
"""How many bytes one manifest hashes at most (64 GiB); beyond it, size and mtime only."""
MANIFEST_COLUMNS = ("parameter", "path", "size", "mtime", "sha256", "state")
_BLOCK = 1024 * 1024
_PROGRESS_EVERY_S = 0.25

EntryState = Literal["hashed", "unhashed", "missing", "unreadable"]
DataFlow = Literal["IN", "OUT", "INOUT", "NONE"]


@dataclass(frozen=True)
class PathParameter:
    """A PATH job parameter as a manifest needs it."""

    name: str
    value: str
    data_flow: DataFlow
    object_type: str | None
    """FILE, DIRECTORY, or None when the template does not say."""


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a manifest (or one missing path)."""

    parameter: str
    path: str
    """Relative to the parameter's value for a directory; the file's own name for a file."""
    size: int | None
    mtime: datetime | None
    sha256: str | None
    state: EntryState

    def as_row(self) -> tuple[Any, ...]:
        return (self.parameter, self.path, self.size, self.mtime, self.sha256, self.state)


ManifestProgressCallback = Callable[[int, int, int, int], None]
"""(files done, files in all, bytes done, bytes in all), at most four times a second."""


def path_parameters(
    definitions: Iterable[Any], values: Mapping[str, Any], flows: Sequence[DataFlow]
) -> list[PathParameter]:
    """The PATH parameters whose ``dataFlow`` is one of ``flows``, with their values."""
    found = []
    for definition in definitions:
        if str(definition.type.value) != "PATH":
            continue
        flow = str(getattr(getattr(definition, "dataFlow", None), "value", "NONE") or "NONE")
        value = values.get(definition.name)
        if flow not in flows or value is None:
            continue
        kind = getattr(getattr(definition, "objectType", None), "value", None)
        text = str(getattr(value, "value", value))
        found.append(PathParameter(definition.name, text, flow, kind))  # type: ignore[arg-type]
    return found


def capture_manifest(
    parameters: Sequence[PathParameter],
    *,
    hash_budget_bytes: int = DEFAULT_HASH_BUDGET_BYTES,
    workers: int | None = None,
    progress: ManifestProgressCallback | None = None,
) -> tuple[ManifestEntry, ...]:
    """Every file under ``parameters``, hashed (in order of the parameters, then of paths)."""
    listed = [entry for parameter in parameters for entry in _list(parameter)]
    sizes = [entry.size or 0 for entry, _ in listed if entry.state == "hashed"]
    budget = _Budget(hash_budget_bytes)
    tracker = _Progress(len(listed), sum(sizes), progress)
    with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 2) * 2)) as pool:
        done = list(pool.map(lambda item: _hash(item[0], item[1], budget, tracker), listed))
    tracker.finish()
    return tuple(done)


def manifest_digest(entries: Iterable[ManifestEntry]) -> str | None:
    """One SHA-256 over the entries' paths and hashes: equal outputs give equal digests.

    None for an empty manifest, or one with a file that could not be hashed.
    """
    rows = sorted((e.parameter, e.path, e.sha256 or "", e.state) for e in entries)
    if not rows or any(state not in ("hashed", "missing") for *_, state in rows):
        return None
    digest = hashlib.sha256()
    for parameter, path, sha256, state in rows:
        digest.update(f"{parameter}\0{path}\0{sha256}\0{state}\n".encode())
    return digest.hexdigest()


_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_byte_size(text: str) -> int:
    """``"64G"``, ``"512M"``, ``"1.5T"`` or a number of bytes; ValueError when it is none."""
    cleaned = text.strip().upper().removesuffix("IB").removesuffix("B")
    number, unit = (cleaned[:-1], cleaned[-1]) if cleaned[-1:] in "KMGT" else (cleaned, "")
    try:
        size = float(number) * _SIZE_UNITS[unit]
    except (ValueError, KeyError):
        raise ValueError(f"{text!r} is not a size such as 512M, 64G or 1000000") from None
    if size < 0:
        raise ValueError(f"a size cannot be negative: {text!r}")
    return int(size)


# ---- listing --------------------------------------------------------------------------------


def _list(parameter: PathParameter) -> Iterator[tuple[ManifestEntry, Path]]:
    root = Path(parameter.value)
    try:
        status = root.stat()
    except OSError:
        yield _missing(parameter, root.name if parameter.object_type == "FILE" else "."), root
        return
    if stat.S_ISDIR(status.st_mode):
        yield from _walk(parameter, root)
    else:
        yield _listed(parameter, root.name, status), root


def _walk(parameter: PathParameter, root: Path) -> Iterator[tuple[ManifestEntry, Path]]:
    found = []
    for folder, directories, files in os.walk(root, onerror=None, followlinks=False):
        directories.sort()
        for name in files:
            path = Path(folder) / name
            found.append(path)
    if not found:
        yield _missing(parameter, "."), root  # an empty folder: nothing came out
        return
    for path in sorted(found):
        relative = path.relative_to(root).as_posix()
        try:
            status = path.stat()
        except OSError:
            yield _missing(parameter, relative), path
            continue
        if not stat.S_ISREG(status.st_mode):
            continue  # sockets, FIFOs, devices and dangling links are not outputs to hash
        yield _listed(parameter, relative, status), path


def _listed(parameter: PathParameter, relative: str, status: os.stat_result) -> ManifestEntry:
    mtime = datetime.fromtimestamp(status.st_mtime, tz=timezone.utc)
    return ManifestEntry(parameter.name, relative, status.st_size, mtime, None, "hashed")


def _missing(parameter: PathParameter, relative: str) -> ManifestEntry:
    return ManifestEntry(parameter.name, relative, None, None, None, "missing")


# ---- hashing --------------------------------------------------------------------------------


class _Budget:
    """Bytes left to hash; shared by the hashing threads."""

    def __init__(self, limit: int) -> None:
        self._left = limit
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        with self._lock:
            if size > self._left:
                return False
            self._left -= size
            return True


class _Progress:
    def __init__(self, files: int, total_bytes: int, report: ManifestProgressCallback | None):
        self._files, self._total = files, total_bytes
        self._report = report
        self._lock = threading.Lock()
        self._done_files = self._done_bytes = 0
        self._last = 0.0

    def add(self, files: int, size: int) -> None:
        if self._report is None:
            return
        with self._lock:
            self._done_files += files
            self._done_bytes += size
            now = time.monotonic()
            if now - self._last < _PROGRESS_EVERY_S:
                return
            self._last = now
            counts = (self._done_files, self._files, self._done_bytes, self._total)
        self._report(*counts)

    def finish(self) -> None:
        if self._report is not None and self._files:
            self._report(self._files, self._files, self._total, self._total)


def _hash(entry: ManifestEntry, path: Path, budget: _Budget, tracker: _Progress) -> ManifestEntry:
    if entry.state != "hashed" or entry.size is None:
        tracker.add(1, 0)
        return entry
    if not budget.take(entry.size):
        tracker.add(1, entry.size)
        return replace(entry, state="unhashed")
    digest = hashlib.sha256()
    try:
        with open(path, "rb", buffering=0) as stream:
            while block := stream.read(_BLOCK):
                digest.update(block)
                tracker.add(0, len(block))
    except OSError:
        tracker.add(1, 0)
        return replace(entry, state="unreadable")
    tracker.add(1, 0)
    return replace(entry, sha256=digest.hexdigest())


# ---- in run records ------------------------------------------------------------------------


def entries_json(entries: Iterable[ManifestEntry]) -> list[dict[str, Any]]:
    return [
        {
            "parameter": e.parameter,
            "path": e.path,
            "size": e.size,
            "mtime": None if e.mtime is None else e.mtime.isoformat(),
            "sha256": e.sha256,
            "state": e.state,
        }
        for e in entries
    ]


def entries_from_json(body: Any) -> tuple[ManifestEntry, ...]:
    """The entries a record holds; raises TypeError/ValueError/KeyError for a malformed one."""
    if body is None:
        return ()
    if not isinstance(body, list):
        raise TypeError(f"a manifest is a list of entries, not {type(body).__name__}")
    entries = []
    for item in body:
        state = item["state"]
        if state not in ("hashed", "unhashed", "missing", "unreadable"):
            raise ValueError(f"unknown manifest entry state {state!r}")
        mtime = item.get("mtime")
        size = item.get("size")
        entries.append(
            ManifestEntry(
                parameter=str(item["parameter"]),
                path=str(item["path"]),
                size=None if size is None else int(size),
                mtime=None if mtime is None else datetime.fromisoformat(str(mtime)),
                sha256=None if item.get("sha256") is None else str(item["sha256"]),
                state=state,
            )
        )
    return tuple(entries)
