"""Tests for path mapping rules, checked against openjd-sessions 0.14 where it matters."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePath, PurePosixPath, PureWindowsPath
from typing import Any

import pytest

from openjd_notebook.sessions._path_mapping import (
    PathFormat,
    PathMappingRule,
    path_mapping_file_text,
    to_host_path_separators,
)

P = PurePosixPath
W = PureWindowsPath


def posix_rule(source: str, dest: str = "/mnt/dest") -> PathMappingRule:
    return PathMappingRule(
        source_path_format=PathFormat.POSIX, source_path=P(source), destination_path=P(dest)
    )


def windows_rule(source: str, dest: str = "/mnt/dest") -> PathMappingRule:
    return PathMappingRule(
        source_path_format=PathFormat.WINDOWS, source_path=W(source), destination_path=P(dest)
    )


def uri_rule(source: str, dest: str = "/mnt/dest") -> PathMappingRule:
    return PathMappingRule(
        source_path_format=PathFormat.URI, source_path=source, destination_path=P(dest)
    )


def reference_rule(rule: PathMappingRule) -> Any:
    """The openjd-sessions rule with the same fields as ours."""
    from openjd.sessions import PathFormat as RefFormat
    from openjd.sessions import PathMappingRule as RefRule

    return RefRule(
        source_path_format=RefFormat(rule.source_path_format.value),
        source_path=rule.source_path,
        destination_path=rule.destination_path,
    )


@contextmanager
def simulated_windows_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make both implementations believe they run on Windows, for the body only."""
    import openjd.sessions._path_mapping as reference_module

    with monkeypatch.context() as patch:
        patch.setattr(os, "name", "nt")
        patch.setattr(reference_module, "os_name", "nt")
        yield


# ---------------------------------------------------------------- enum and constructor


def test_path_format_values_match_reference() -> None:
    from openjd.sessions import PathFormat as RefFormat

    assert [(f.name, f.value) for f in PathFormat] == [(f.name, f.value) for f in RefFormat]
    assert PathFormat.POSIX == "POSIX"
    assert isinstance(PathFormat.URI, str)


@pytest.mark.parametrize(
    ("path_format", "source", "message"),
    [
        (PathFormat.POSIX, W("C:\\a"), "must be a PurePosixPath for the POSIX"),
        (PathFormat.POSIX, "/a", "must be a PurePosixPath for the POSIX"),
        (PathFormat.WINDOWS, P("/a"), "must be a PureWindowsPath for the WINDOWS"),
        (PathFormat.WINDOWS, "C:\\a", "must be a PureWindowsPath for the WINDOWS"),
        (PathFormat.URI, P("/a"), "must be a str for the URI"),
        (PathFormat.URI, "s3:/bucket", "must begin with '<scheme>://'"),
        (PathFormat.URI, "/bucket", "must begin with '<scheme>://'"),
        (PathFormat.URI, "3s://bucket", "must begin with '<scheme>://'"),
    ],
)
def test_constructor_rejects_wrong_source(
    path_format: PathFormat, source: Any, message: str
) -> None:
    with pytest.raises(ValueError, match="source_path") as info:
        PathMappingRule(
            source_path_format=path_format, source_path=source, destination_path=P("/d")
        )
    assert message in str(info.value)


def test_constructor_rejects_bad_format_and_destination() -> None:
    with pytest.raises(ValueError, match="source_path_format must be one of"):
        PathMappingRule(
            source_path_format="MAC",  # type: ignore[arg-type]
            source_path=P("/a"),
            destination_path=P("/d"),
        )
    with pytest.raises(ValueError, match="destination_path must be a PurePath, got str"):
        PathMappingRule(
            source_path_format=PathFormat.POSIX,
            source_path=P("/a"),
            destination_path="/d",  # type: ignore[arg-type]
        )


def test_constructor_positional_arguments_are_refused() -> None:
    with pytest.raises(TypeError):
        PathMappingRule(PathFormat.POSIX, P("/a"), P("/d"))  # type: ignore[call-arg]


@pytest.mark.parametrize("uri", ["s3://bucket", "x://y/z", "C://Users/foo", "git+ssh://h/r"])
def test_constructor_accepts_uri_sources(uri: str) -> None:
    assert uri_rule(uri).source_path == uri


def test_format_given_as_string_is_stored_as_enum() -> None:
    rule = PathMappingRule(
        source_path_format="POSIX",  # type: ignore[arg-type]
        source_path=P("/a"),
        destination_path=P("/d"),
    )
    assert rule.source_path_format is PathFormat.POSIX


def test_rule_is_frozen_hashable_and_compares_by_value() -> None:
    rule = posix_rule("/a")
    assert rule == posix_rule("/a")
    assert rule != posix_rule("/b")
    assert len({rule, posix_rule("/a"), windows_rule("C:\\a")}) == 2
    with pytest.raises(AttributeError):
        rule.source_path = P("/b")  # type: ignore[misc]


# ---------------------------------------------------------------- from_dict / to_dict


@pytest.mark.parametrize(
    "rule",
    [posix_rule("/mnt/a b"), windows_rule("\\\\srv\\share\\x"), uri_rule("s3://Bucket/p")],
)
def test_dict_round_trip(rule: PathMappingRule) -> None:
    as_dict = rule.to_dict()
    assert list(as_dict) == ["source_path_format", "source_path", "destination_path"]
    assert PathMappingRule.from_dict(as_dict) == rule
    assert as_dict == reference_rule(rule).to_dict()


def test_to_dict_values() -> None:
    assert windows_rule("c:/Assets", "/mnt/assets").to_dict() == {
        "source_path_format": "WINDOWS",
        "source_path": "c:\\Assets",
        "destination_path": "/mnt/assets",
    }


def test_from_dict_builds_typed_paths_and_ignores_format_case() -> None:
    rule = PathMappingRule.from_dict(
        {"source_path_format": "windows", "source_path": "C:/a", "destination_path": "/d"}
    )
    assert rule.source_path_format is PathFormat.WINDOWS
    assert rule.source_path == W("C:\\a")
    assert type(rule.destination_path) is type(PurePath())
    uri = PathMappingRule.from_dict(
        {"source_path_format": "Uri", "source_path": "s3://b//k", "destination_path": "/d"}
    )
    assert uri.source_path == "s3://b//k"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Empty path mapping rule"),
        ({"source_path_format": "POSIX"}, "['source_path', 'destination_path']"),
        ({"source_path": "/a", "destination_path": "/d"}, "['source_path_format']"),
        (
            {
                "source_path_format": "POSIX",
                "source_path": "/a",
                "destination_path": "/d",
                "extra": "x",
            },
            "unsupported fields: ['extra']",
        ),
        (
            {"source_path_format": "MAC", "source_path": "/a", "destination_path": "/d"},
            "'MAC' is not a valid PathFormat",
        ),
        (
            {"source_path_format": "URI", "source_path": "/a", "destination_path": "/d"},
            "'<scheme>://'",
        ),
        (
            {"source_path_format": "POSIX", "source_path": 3, "destination_path": "/d"},
            "'source_path' must be a str",
        ),
    ],
)
def test_from_dict_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        PathMappingRule.from_dict(data)
    assert message in str(info.value)


# ---------------------------------------------------------------- apply: explicit expectations


@pytest.mark.parametrize(
    ("source", "path", "expected"),
    [
        ("/mnt/share", "/mnt/share/a/b.ma", (True, "/mnt/dest/a/b.ma")),
        ("/mnt/share", "/mnt/share", (True, "/mnt/dest")),
        ("/mnt/share", "/mnt/share/", (True, "/mnt/dest/")),
        ("/mnt/share", "/mnt/share/a/", (True, "/mnt/dest/a/")),
        ("/mnt/share", "/mnt/sharex/a", (False, "/mnt/sharex/a")),
        ("/mnt/share", "/MNT/share/a", (False, "/MNT/share/a")),
        ("/mnt/share", "/mnt", (False, "/mnt")),
        ("/mnt/share", "/mnt/share/../x", (True, "/mnt/dest/../x")),
        ("/mnt/share", "/mnt//share/./a", (True, "/mnt/dest/a")),
        ("/", "/a", (True, "/mnt/dest/a")),
        ("/", "/", (True, "/mnt/dest/")),
        ("/", "a", (False, "a")),
        (".", "a/b", (True, "/mnt/dest/a/b")),
        (".", "/a/b", (False, "/a/b")),
    ],
)
def test_apply_posix(source: str, path: str, expected: tuple[bool, str]) -> None:
    assert posix_rule(source).apply(path=path) == expected


@pytest.mark.parametrize(
    ("source", "path", "expected"),
    [
        ("C:\\Assets", "C:\\Assets\\a\\b.ma", (True, "/mnt/dest/a/b.ma")),
        ("C:\\Assets", "c:/assets/a/b.ma", (True, "/mnt/dest/a/b.ma")),
        ("C:\\Assets", "c:\\ASSETS\\a\\", (True, "/mnt/dest/a/")),
        ("C:\\Assets", "c:\\assets/a/", (True, "/mnt/dest/a/")),
        ("C:\\Assets", "C:\\Assetsx\\a", (False, "C:\\Assetsx\\a")),
        ("C:\\Assets", "D:\\Assets\\a", (False, "D:\\Assets\\a")),
        ("C:\\Assets", "C:\\Assets", (True, "/mnt/dest")),
        ("C:\\Assets", "C:\\Assets\\..\\x", (True, "/mnt/dest/../x")),
        # Only ASCII letters fold: KELVIN SIGN is not "k".
        ("C:\\k", "C:\\\u212a\\a", (False, "C:\\\u212a\\a")),
        ("\\\\Server\\Share", "\\\\server\\share\\a", (True, "/mnt/dest/a")),
        ("\\\\Server\\Share", "//SERVER/share/a/", (True, "/mnt/dest/a/")),
        ("\\\\Server\\Share", "\\\\server\\other\\a", (False, "\\\\server\\other\\a")),
    ],
)
def test_apply_windows(source: str, path: str, expected: tuple[bool, str]) -> None:
    assert windows_rule(source).apply(path=path) == expected


@pytest.mark.parametrize(
    ("source", "path", "expected"),
    [
        ("s3://bucket/prefix", "s3://bucket/prefix/a/b", (True, "/mnt/dest/a/b")),
        ("s3://bucket/prefix", "S3://BUCKET/prefix/a/", (True, "/mnt/dest/a/")),
        ("s3://bucket/prefix", "s3://bucket/prefix", (True, "/mnt/dest")),
        ("s3://bucket/prefix", "s3://bucket/Prefix/a", (False, "s3://bucket/Prefix/a")),
        ("s3://bucket/prefix", "s3://bucket/prefixx/a", (False, "s3://bucket/prefixx/a")),
        ("s3://bucket/prefix", "s3://bucketx/prefix/a", (False, "s3://bucketx/prefix/a")),
        ("s3://bucket/prefix", "/bucket/prefix/a", (False, "/bucket/prefix/a")),
        ("s3://bucket", "s3://bucket/a", (True, "/mnt/dest/a")),
        ("s3://bucket", "s3://bucket//a", (True, "/mnt/dest//a")),
        # A source with a trailing "/" only matches itself (reference behaviour).
        ("s3://bucket/prefix/", "s3://bucket/prefix/a", (False, "s3://bucket/prefix/a")),
        ("s3://bucket/prefix/", "s3://bucket/prefix/", (True, "/mnt/dest/")),
    ],
)
def test_apply_uri(source: str, path: str, expected: tuple[bool, str]) -> None:
    assert uri_rule(source).apply(path=path) == expected


def test_apply_renders_result_for_windows_host(monkeypatch: pytest.MonkeyPatch) -> None:
    windows_dest = W("D:\\proj")
    with simulated_windows_host(monkeypatch):
        posix = PathMappingRule(
            source_path_format=PathFormat.POSIX,
            source_path=P("/mnt/share"),
            destination_path=windows_dest,
        )
        uri = PathMappingRule(
            source_path_format=PathFormat.URI,
            source_path="s3://bucket",
            destination_path=windows_dest,
        )
        assert posix.apply(path="/mnt/share/a/b/") == (True, "D:\\proj\\a\\b\\")
        assert uri.apply(path="s3://bucket/a/b/") == (True, "D:\\proj\\a\\b\\")


def test_apply_keeps_doubled_trailing_separator_like_reference() -> None:
    # Destination "/" plus a preserved trailing "/" gives "//"; the reference does the same.
    assert posix_rule("/a", dest="/").apply(path="/a/") == (True, "//")


# ---------------------------------------------------------------- apply: against the reference

_POSIX_SOURCES = ["/", "/mnt/share", "/mnt/share/", "rel/dir", ".", "//host/x"]
_WINDOWS_SOURCES = ["C:\\Assets", "c:/assets/", "C:\\", "C:", "\\\\srv\\share", "\\top", ""]
_URI_SOURCES = ["s3://bucket", "s3://bucket/prefix", "s3://Bucket/prefix/", "C://Users", "x://"]
_PATHS = [
    "",
    "/",
    "//",
    "a",
    "a/b/",
    "/mnt/share",
    "/mnt/share/",
    "/mnt/share/a/b",
    "/mnt/share//a/./b/../c",
    "/mnt/sharex/a",
    "/MNT/Share/a",
    "//host/x/y",
    "///host/x/y",
    "rel/dir/a\\b",
    "C:\\Assets\\a",
    "c:/ASSETS/a/",
    "C:\\Assetsx\\a",
    "C:\\",
    "C:a\\b",
    "D:\\Assets\\a",
    "\\\\SRV\\Share\\a\\",
    "//srv/share/a",
    "\\top\\a",
    "C:\\\u212assets",
    "s3://bucket",
    "s3://bucket/",
    "S3://BUCKET/prefix/a",
    "s3://bucket/prefix/",
    "s3://bucket/prefix//a/",
    "s3://bucket/Prefix/a",
    "s3://bucket\u212a/prefix",
    "C://Users/me",
    "x:///y",
]


def _all_rules() -> list[PathMappingRule]:
    rules = [posix_rule(s) for s in _POSIX_SOURCES]
    rules += [windows_rule(s) for s in _WINDOWS_SOURCES]
    rules += [uri_rule(s) for s in _URI_SOURCES]
    rules += [posix_rule("/mnt/share", dest="/"), uri_rule("s3://bucket", dest="rel")]
    return rules


_RULES = _all_rules()
_RULE_IDS = [f"{r.source_path_format.name}:{r.source_path}->{r.destination_path}" for r in _RULES]


@pytest.mark.parametrize("rule", _RULES, ids=_RULE_IDS)
@pytest.mark.parametrize("path", _PATHS)
def test_apply_matches_reference(rule: PathMappingRule, path: str) -> None:
    assert rule.apply(path=path) == reference_rule(rule).apply(path=path)


@pytest.mark.parametrize("rule", _RULES, ids=_RULE_IDS)
def test_apply_matches_reference_on_windows_host(
    rule: PathMappingRule, monkeypatch: pytest.MonkeyPatch
) -> None:
    windows_dest = PathMappingRule(
        source_path_format=rule.source_path_format,
        source_path=rule.source_path,
        destination_path=W(str(rule.destination_path)),
    )
    reference = reference_rule(windows_dest)
    for path in _PATHS:
        with simulated_windows_host(monkeypatch):
            ours, theirs = windows_dest.apply(path=path), reference.apply(path=path)
        assert ours == theirs, path


@pytest.mark.parametrize("rule", _RULES, ids=_RULE_IDS)
def test_source_component_count_matches_reference(rule: PathMappingRule) -> None:
    expected = reference_rule(rule)._source_path_component_count()
    assert rule.source_component_count() == expected


# ---------------------------------------------------------------- host separators


@pytest.mark.parametrize("path", _PATHS)
def test_to_host_path_separators_matches_reference(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openjd.sessions._path_mapping import to_host_path_separators as reference

    assert to_host_path_separators(path) == path == reference(path)
    with simulated_windows_host(monkeypatch):
        ours, theirs = to_host_path_separators(path), reference(path)
    assert ours == theirs


def test_to_host_path_separators_on_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    with simulated_windows_host(monkeypatch):
        assert to_host_path_separators("C:/a//b/") == "C:\\a\\\\b\\"
        assert to_host_path_separators("s3://bucket/a/b") == "s3://bucket/a/b"
        assert to_host_path_separators("C://Users/foo") == "C://Users/foo"
        assert to_host_path_separators("") == ""


# ---------------------------------------------------------------- rules file text


def test_path_mapping_file_text_without_rules() -> None:
    assert path_mapping_file_text([]) == "{}"


def test_path_mapping_file_text_exact() -> None:
    rules = [posix_rule("/mnt/share/a"), windows_rule("C:\\x", "/d"), uri_rule("s3://b/k", "/u")]
    expected = json.dumps(
        {
            "version": "pathmapping-1.0",
            "path_mapping_rules": [reference_rule(rule).to_dict() for rule in rules],
        }
    )
    text = path_mapping_file_text(rules)
    assert text == expected
    assert text.startswith('{"version": "pathmapping-1.0", "path_mapping_rules": [{')
    assert json.loads(text)["path_mapping_rules"][1] == {
        "source_path_format": "WINDOWS",
        "source_path": "C:\\x",
        "destination_path": "/d",
    }
