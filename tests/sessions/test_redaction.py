"""Tests for per-session redaction (behaviour spec items 47-51, weak point W15)."""

from __future__ import annotations

import threading

import pytest

from openjd_notebook.sessions._protocol import Malformed, SetEnv, parse_output_line
from openjd_notebook.sessions._redaction import REDACTED, Redactor

R = REDACTED


def redactor_with(*secrets: str) -> Redactor:
    redactor = Redactor()
    for secret in secrets:
        redactor.add(secret)
    return redactor


def test_redacted_is_eight_stars() -> None:
    assert REDACTED == "********"


def test_no_secrets_returns_the_same_object() -> None:
    redactor = Redactor()
    text = "".join(["some ", "output"])  # not interned
    assert not redactor
    assert redactor.redact(text) is text


def test_no_occurrence_returns_the_same_object() -> None:
    redactor = redactor_with("hunter2")
    text = "".join(["nothing ", "to hide"])
    assert redactor
    assert redactor.redact(text) is text


@pytest.mark.parametrize(
    ("secrets", "text", "expected"),
    [
        (["hunter2"], "pw is hunter2!", f"pw is {R}!"),
        (["hunter2"], "hunter2hunter2 and hunter2", f"{R} and {R}"),  # touching runs merge
        (["x"], "a long secret", "a long secret"),
        (["abc", "xyz"], "abc-xyz", f"{R}-{R}"),
        (["ab", "cd"], "abcd", R),  # adjacent secrets merge, as in the reference
        (["abc", "bcd"], "xabcdx", f"x{R}x"),  # partial overlap leaves no fragment
        (["bcd", "abc"], "xabcdx", f"x{R}x"),
        (["secret", "secret-long"], "a secret-long b", f"a {R} b"),
        (["aa"], "aaa b aaaa", f"{R} b {R}"),
        (["a.b", "(x)"], "a.b axb (x) x", f"{R} axb {R} x"),  # regex metacharacters
        (["ünï"], "Ünï ünï", f"Ünï {R}"),  # case-sensitive, non-ASCII
    ],
)
def test_substrings(secrets: list[str], text: str, expected: str) -> None:
    assert redactor_with(*secrets).redact(text) == expected


def test_empty_secret_is_ignored() -> None:
    redactor = redactor_with("")
    assert not redactor
    assert redactor.redact("abc") == "abc"


def test_adding_a_known_secret_again_is_harmless() -> None:
    redactor = redactor_with("s3cr3t", "s3cr3t")
    assert redactor.redact("s3cr3t") == R


def test_multi_line_secret() -> None:
    redactor = redactor_with("first\nmid\nlast")
    # The whole value, and the first and last lines as substrings.
    assert redactor.redact("a first\nmid\nlast b") == f"a {R} b"
    assert redactor.redact("xx first yy") == f"xx {R} yy"
    assert redactor.redact("yy last") == f"yy {R}"
    # A middle line only matches a whole line.
    assert redactor.redact("mid") == R
    assert redactor.redact("a mid b") == "a mid b"
    assert redactor.redact("one\nmid\ntwo") == f"one\n{R}\ntwo"


def test_multi_line_secret_with_empty_edges() -> None:
    # Index decides first/last, as in the reference: "core" is a middle line.
    redactor = redactor_with("\ncore\n")
    assert redactor.redact("core") == R
    assert redactor.redact("hardcore") == "hardcore"


def test_json_raw_payload() -> None:
    line = 'openjd_redacted_env: "PW=se cr\\net"'
    message = parse_output_line(line)
    assert isinstance(message, SetEnv)
    redactor = Redactor()
    redactor.add(message.value, message.raw_payload)
    # The still-escaped text is masked too, closing quote included.
    assert redactor.redact(line) == f'openjd_redacted_env: "PW={R}'
    assert redactor.redact("value: se cr") == f"value: {R}"


def test_plain_raw_payload_adds_nothing_new() -> None:
    redactor = Redactor()
    redactor.add("abc", "PW=abc")
    assert redactor.redact("PW=abc") == f"PW={R}"


def test_triggering_line_is_redacted() -> None:
    line = "openjd_redacted_env: PW=secret"
    message = parse_output_line(line)
    assert isinstance(message, SetEnv)
    redactor = Redactor()
    redactor.add(message.value, message.raw_payload)
    assert redactor.redact(line) == f"openjd_redacted_env: PW={R}"


def test_malformed_redacted_line_secret_payload() -> None:
    line = "OPENJD_REDACTED_ENV: PW=hunter2"
    message = parse_output_line(line)
    assert isinstance(message, Malformed) and message.secret_payload == "hunter2"
    redactor = Redactor()
    redactor.add(message.secret_payload)
    assert redactor.redact(f"{line} -- ERROR: {message.fail_message}") == (
        f"OPENJD_REDACTED_ENV: PW={R} -- ERROR: Open Job Description: "
        f"Incorrectly formatted openjd env command (OPENJD_REDACTED_ENV: PW={R})"
    )


def test_sessions_do_not_share_secrets() -> None:
    first, second = redactor_with("alpha"), Redactor()
    assert first.redact("alpha") == R
    assert second.redact("alpha") == "alpha"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("echo hi", "echo hi"),
        (
            "python -c \"print('openjd_redacted_env: K=V')\"",
            f"python -c \"print('openjd_redacted_env: {R}",
        ),
    ],
)
def test_mask_redacted_env_requests(command: str, expected: str) -> None:
    assert Redactor.mask_redacted_env_requests(command) == expected


def test_long_text_is_linear() -> None:
    redactor = redactor_with("needle", "needles", "dle")
    text = ("hay " * 250_000) + "needles"
    assert redactor.redact(text).endswith(R)
    assert redactor.redact("needle" * 10_000) == R


def test_concurrent_add_and_redact() -> None:
    redactor = Redactor()
    secrets = [f"secret{i:04d}" for i in range(400)]
    text = " ".join(secrets)
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        try:
            while not done.is_set():
                # Secrets arrive in order, so any snapshot masks exactly a prefix of them.
                words = redactor.redact(text).split(" ")
                masked = words.count(R)
                assert words == [R] * masked + secrets[masked:]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def writer() -> None:
        for secret in secrets:
            redactor.add(secret)
        done.set()

    threads = [threading.Thread(target=reader), threading.Thread(target=reader)]
    for thread in threads:
        thread.start()
    writer()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert redactor.redact(text) == " ".join([R] * len(secrets))
