"""Per-session masking of the secrets an action declares with ``openjd_redacted_env``.

Unlike the reference, which attaches a filter to a process-wide logger (so one
session's secrets mask another session's output), a ``Redactor`` belongs to one
session and only touches the text that session hands it.

Masking semantics follow the reference: every occurrence of every registered
substring is found, overlapping and touching occurrences are merged, and each
merged run becomes exactly ``REDACTED``. Middle lines of a multi-line secret only
match a whole line.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

__all__ = ["REDACTED", "Redactor"]

REDACTED = "********"

_REDACTED_ENV_TOKEN = "openjd_redacted_env:"


@dataclass(frozen=True, slots=True)
class _Secrets:
    """An immutable snapshot; replaced as a whole so readers never see a half update."""

    substrings: frozenset[str]
    whole_lines: frozenset[str]
    longest: int
    """Length of the longest substring: how far past a cut a secret can reach."""
    # Substrings only. `^...$` alternatives would defeat the regex engine's
    # first-character skip and make every line ~5x slower, so whole lines are
    # looked up in the set for single-line text ...
    pattern: re.Pattern[str]
    # ... and only multi-line text pays for this one, which has both.
    multiline_pattern: re.Pattern[str]


class Redactor:
    """The secrets of one session, and the masking of text that may contain them.

    Thread-safe: ``add`` may run while other threads call ``redact``.
    """

    __slots__ = ("_lock", "_secrets")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: _Secrets | None = None

    def __bool__(self) -> bool:
        return self._secrets is not None

    def add(self, value: str, raw_payload: str | None = None) -> None:
        """Register a secret value.

        ``raw_payload`` is the message text after ``": "`` as printed; for the JSON
        form (``"NAME=va\\nlue"``) the still-escaped text after ``=`` is a secret too.
        """
        substrings, whole_lines = _split_secret(value)
        raw = _raw_json_value(raw_payload)
        if raw:
            substrings.add(raw)
        if substrings or whole_lines:
            self._register(substrings, whole_lines)

    def redact(self, text: str) -> str:
        """Mask every registered secret in ``text``; returns ``text`` itself if none occur."""
        secrets = self._secrets  # one read: a concurrent add swaps the whole snapshot
        if secrets is None:
            return text
        if "\n" in text:
            pattern = secrets.multiline_pattern
        elif secrets.whole_lines and text in secrets.whole_lines:
            return REDACTED
        else:
            pattern = secrets.pattern
        first = pattern.search(text)
        if first is None:
            return text
        return _mask(text, pattern, first)

    @property
    def longest_secret(self) -> int:
        """How many characters past a cut a secret can still reach (0 without secrets)."""
        secrets = self._secrets
        return 0 if secrets is None else secrets.longest

    def safe_cut(self, text: str, limit: int) -> int:
        """Where to cut ``text`` at or before ``limit`` so that no secret straddles the cut,
        so that each piece is masked on its own as the whole would be.

        Falls back to ``limit`` when a secret run covers everything up to it. The caller
        must hold at least ``longest_secret - 1`` characters past ``limit`` when it can.
        """
        secrets = self._secrets
        if secrets is None or len(text) <= limit:
            return min(len(text), limit)
        cut = limit
        probe = cut - 1
        while probe > cut - secrets.longest and probe > 0:
            found = secrets.pattern.match(text, probe)
            if found is not None and found.end() > cut:
                cut = probe  # the secret starts the next piece; look again before it
            probe -= 1
        return cut if cut > 0 else limit

    @staticmethod
    def mask_redacted_env_requests(command: str) -> str:
        """Mask everything after ``openjd_redacted_env:`` in a command line.

        For logging a command *before* it runs, when its secrets are not registered
        yet (the reference does this for the Windows "Running command" line).
        """
        position = command.find(_REDACTED_ENV_TOKEN)
        if position == -1:
            return command
        return command[: position + len(_REDACTED_ENV_TOKEN)] + " " + REDACTED

    def _register(self, substrings: set[str], whole_lines: set[str]) -> None:
        with self._lock:
            current = self._secrets
            if current is not None:
                if substrings <= current.substrings and whole_lines <= current.whole_lines:
                    return
                substrings |= current.substrings
                whole_lines |= current.whole_lines
            self._secrets = _compile(frozenset(substrings), frozenset(whole_lines))


def _split_secret(value: str) -> tuple[set[str], set[str]]:
    """The reference's split: the value, its first and last lines as substrings, and
    its middle lines as whole-line matches (so a short middle line such as "}" does
    not mask every brace in the log)."""
    if not value:
        return set(), set()
    substrings = {value}
    whole_lines: set[str] = set()
    lines = value.split("\n")
    last = len(lines) - 1
    for index, line in enumerate(lines):
        if not line:
            continue
        if index in (0, last):
            substrings.add(line)
        else:
            whole_lines.add(line)
    return substrings, whole_lines


def _raw_json_value(raw_payload: str | None) -> str | None:
    """For the JSON form, the escaped text after "=" (closing quote included)."""
    if raw_payload is None:
        return None
    text = raw_payload.lstrip()
    if not text.startswith('"'):
        return None  # plain form: the raw text equals the value
    _, equals, raw = text.partition("=")
    return raw if equals else None


def _compile(substrings: frozenset[str], whole_lines: frozenset[str]) -> _Secrets:
    pattern = _alternation([(s, re.escape(s)) for s in substrings], 0)
    multiline_pattern = pattern
    if whole_lines:
        alternatives = [(s, re.escape(s)) for s in substrings]
        alternatives += [(s, f"^{re.escape(s)}$") for s in whole_lines]
        multiline_pattern = _alternation(alternatives, re.MULTILINE)
    longest = max((len(s) for s in substrings), default=0)
    return _Secrets(substrings, whole_lines, longest, pattern, multiline_pattern)


def _alternation(alternatives: list[tuple[str, str]], flags: int) -> re.Pattern[str]:
    # At any position the first alternative that matches must be the longest secret
    # starting there, so alternatives are ordered by length, longest first.
    alternatives.sort(key=lambda item: (-len(item[0]), item[1]))
    return re.compile("|".join(body for _, body in alternatives), flags)


def _mask(text: str, pattern: re.Pattern[str], first: re.Match[str]) -> str:
    """Replace the union of all secret occurrences, starting from the leftmost one.

    Each search starts one character after the previous occurrence's start, so an
    occurrence that begins inside (or right at the end of) the current run extends
    it. Every position is scanned by one search only: linear in ``len(text)``.
    """
    pieces: list[str] = []
    copied_to = 0
    run_start, run_end = first.span()
    probe = run_start
    while True:
        following = pattern.search(text, probe + 1)
        if following is not None and following.start() <= run_end:
            probe = following.start()
            run_end = max(run_end, following.end())
            continue
        pieces.append(text[copied_to:run_start])
        pieces.append(REDACTED)
        copied_to = run_end
        if following is None:
            break
        run_start, run_end = following.span()
        probe = run_start
    pieces.append(text[copied_to:])
    return "".join(pieces)
