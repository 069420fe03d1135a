"""Path mapping rules: rewrite a path submitted from one machine into this host's terms.

Behaviour follows openjd-sessions 0.14 exactly, quirks included, because session
symbol tables and the rules file written before each action must be identical.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import PurePath, PurePosixPath, PureWindowsPath

__all__ = ["PathFormat", "PathMappingRule", "path_mapping_file_text", "to_host_path_separators"]

# RFC 3986 scheme followed by "://"; a one-letter scheme counts, as in the reference.
_URI_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_RULE_KEYS = ("source_path_format", "source_path", "destination_path")


class PathFormat(str, Enum):
    POSIX = "POSIX"
    WINDOWS = "WINDOWS"
    URI = "URI"


def _host_is_posix() -> bool:
    # Read at call time so tests can simulate a Windows host.
    return os.name == "posix"


def _host_sep() -> str:
    return "/" if _host_is_posix() else "\\"


def _ascii_lower(value: str) -> str:
    # ASCII-only fold: str.lower() maps e.g. KELVIN SIGN to "k", which the engines do not.
    return "".join(ch.lower() if ch.isascii() else ch for ch in value)


def _split_uri(uri: str) -> tuple[str, str]:
    """Split into ("scheme://authority", "/path..."); no "://" means it is all path."""
    scheme_end = uri.find("://")
    if scheme_end < 0:
        return "", uri
    slash = uri.find("/", scheme_end + 3)
    if slash < 0:
        return uri, ""
    return uri[:slash], uri[slash:]


def to_host_path_separators(path: str) -> str:
    """Use this host's separators; URIs keep "/" since their path is not a filesystem path."""
    if _host_is_posix() or _URI_PREFIX.match(path):
        return path
    return path.replace("/", "\\")


def _check_source(source_path_format: PathFormat, source_path: object) -> None:
    if source_path_format is PathFormat.URI:
        if not isinstance(source_path, str):
            raise ValueError(
                "Path mapping rule source_path must be a str for the URI source_path_format, "
                f"got {type(source_path).__name__}"
            )
        if _URI_PREFIX.match(source_path) is None:
            raise ValueError(
                "Path mapping rule source_path for the URI source_path_format must begin "
                f"with '<scheme>://', got {source_path!r}"
            )
        return
    expected = PurePosixPath if source_path_format is PathFormat.POSIX else PureWindowsPath
    if not isinstance(source_path, expected):
        raise ValueError(
            f"Path mapping rule source_path must be a {expected.__name__} for the "
            f"{source_path_format.name} source_path_format, got {type(source_path).__name__}"
        )


@dataclass(frozen=True)
class PathMappingRule:
    """Maps paths under source_path (in source_path_format) to destination_path on this host."""

    source_path_format: PathFormat
    # A str for URI rules: PurePath would collapse the "//" of "scheme://".
    source_path: PurePath | str
    destination_path: PurePath

    def __init__(
        self,
        *,
        source_path_format: PathFormat,
        source_path: PurePath | str,
        destination_path: PurePath,
    ) -> None:
        try:
            path_format = PathFormat(source_path_format)
        except ValueError:
            raise ValueError(
                f"Path mapping rule source_path_format must be one of "
                f"{[f.value for f in PathFormat]}, got {source_path_format!r}"
            ) from None
        _check_source(path_format, source_path)
        if not isinstance(destination_path, PurePath):
            raise ValueError(
                "Path mapping rule destination_path must be a PurePath, "
                f"got {type(destination_path).__name__}"
            )
        # Frozen dataclass: the generated __setattr__ refuses, so go around it.
        object.__setattr__(self, "source_path_format", path_format)
        object.__setattr__(self, "source_path", source_path)
        object.__setattr__(self, "destination_path", destination_path)

    @classmethod
    def from_dict(cls, rule: Mapping[str, str]) -> PathMappingRule:
        """Build a rule from its to_dict() form; the format name is case-insensitive."""
        if not rule:
            raise ValueError("Empty path mapping rule")
        missing = [key for key in _RULE_KEYS if key not in rule]
        if missing:
            raise ValueError(f"Path mapping rule is missing required fields: {missing}")
        unknown = sorted(set(rule) - set(_RULE_KEYS))
        if unknown:
            raise ValueError(f"Path mapping rule has unsupported fields: {unknown}")
        for key in _RULE_KEYS:
            if not isinstance(rule[key], str):
                raise ValueError(f"Path mapping rule field {key!r} must be a str")
        path_format = PathFormat(rule["source_path_format"].upper())
        source: PurePath | str = rule["source_path"]
        if path_format is PathFormat.POSIX:
            source = PurePosixPath(source)
        elif path_format is PathFormat.WINDOWS:
            source = PureWindowsPath(source)
        return cls(
            source_path_format=path_format,
            source_path=source,
            destination_path=PurePath(rule["destination_path"]),
        )

    def to_dict(self) -> dict[str, str]:
        return {
            "source_path_format": self.source_path_format.name,
            "source_path": str(self.source_path),
            "destination_path": str(self.destination_path),
        }

    def source_component_count(self) -> int:
        """Specificity of the source, for ordering rules most specific first.

        A URI's "scheme://authority" counts as one component, plus one per path segment.
        """
        if isinstance(self.source_path, PurePath):
            return len(self.source_path.parts)
        segments = _split_uri(self.source_path)[1].strip("/")
        return 1 + (len(segments.split("/")) if segments else 0)

    def apply(self, *, path: str) -> tuple[bool, str]:
        """Map path if it lies under the source; returns (matched, result or path unchanged).

        ".." is left alone: it may cross a symlink, so collapsing it could change meaning.
        """
        if isinstance(self.source_path, str):
            return self._apply_uri(path)
        return self._apply_filesystem(self.source_path, path)

    def _apply_filesystem(self, source: PurePath, path: str) -> tuple[bool, str]:
        if self.source_path_format is PathFormat.POSIX:
            parsed: PurePath = PurePosixPath(path)
            # An empty source ('.') holds only relative paths, like PurePath.is_relative_to.
            matched = parsed.parts[: len(source.parts)] == source.parts and (
                bool(source.parts) or not parsed.anchor
            )
            trailing = path.endswith("/")
        else:
            parsed = PureWindowsPath(path)
            head = parsed.parts[: len(source.parts)]
            matched = [_ascii_lower(p) for p in head] == [_ascii_lower(p) for p in source.parts]
            trailing = path.endswith(("\\", "/"))
        if not matched:
            return False, path
        rest = parsed.parts[len(source.parts) :]
        host_flavour = PurePosixPath if _host_is_posix() else PureWindowsPath
        result = str(host_flavour(*self.destination_path.parts, *rest))
        if trailing:
            # Added even when the result already ends in a separator, as the reference does.
            result += _host_sep()
        return True, result

    def _apply_uri(self, path: str) -> tuple[bool, str]:
        # Scheme and authority are case-insensitive (RFC 3986); the path part is not.
        src_head, src_tail = _split_uri(str(self.source_path))
        head, tail = _split_uri(path)
        if _ascii_lower(head) != _ascii_lower(src_head):
            return False, path
        if tail != src_tail and not tail.startswith(src_tail + "/"):
            return False, path
        remainder = tail[len(src_tail) :]
        sep = _host_sep()
        result = str(self.destination_path)
        if remainder:
            result = sep.join([result, *remainder[1:].split("/")])
        if path.endswith("/") and not result.endswith(sep):
            result += sep
        return True, result


def path_mapping_file_text(rules: Sequence[PathMappingRule]) -> str:
    """Text of the rules file written before each action; "{}" when there are no rules."""
    if not rules:
        return "{}"
    return json.dumps(
        {"version": "pathmapping-1.0", "path_mapping_rules": [rule.to_dict() for rule in rules]}
    )
