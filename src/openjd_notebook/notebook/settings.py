"""``%openjd_config``: the settings as a dict that shows itself as a table, and the magic's
help (``%openjd_config?``), which lists every setting with its current value."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Settings", "SettingsMagic"]

_CELL = "padding:1px 0.8em 1px 0;text-align:left"
_USAGE = """\
Show the settings of the OpenJD magics, or change them for this session.

    %openjd_config                          show every setting
    %openjd_config cancel_grace=5 workers=2 change some

Each is also an IPython config trait: c.OpenJDMagics.cancel_grace = 5 in ipython_config.py.
"""


class Settings(dict[str, Any]):
    """``{name: value}`` of every setting; shown as a table with defaults and help."""

    def __init__(
        self, values: Mapping[str, Any], defaults: Mapping[str, Any], helps: Mapping[str, str]
    ) -> None:
        super().__init__(values)
        self.defaults = dict(defaults)
        self.helps = dict(helps)

    def lines(self) -> list[str]:
        """``cancel_grace = 10.0  (default 10.0)  Seconds a canceled action ...``."""
        # Aligned, but a long path does not push every help text far to the right.
        width = min(max((len(f"{n} = {v!r}") for n, v in self.items()), default=0), 32)
        lines = []
        for name, value in self.items():
            setting = f"{name} = {value!r}".ljust(width)
            default = self.defaults.get(name)
            note = "" if value == default else f" (default {default!r})"
            lines.append(f"{setting}  {self.helps.get(name, '')}{note}")
        return lines

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text("\n".join(self.lines()))

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td style='{_CELL}'><code>{html.escape(name)}</code></td>"
            f"<td style='{_CELL}'><code>{html.escape(repr(value))}</code></td>"
            f"<td style='{_CELL}'>{html.escape(self.helps.get(name, ''))}"
            f"{self._default_note(name, value)}</td></tr>"
            for name, value in self.items()
        )
        head = "".join(f"<th style='{_CELL}'>{name}</th>" for name in ("setting", "value", ""))
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"

    def _default_note(self, name: str, value: Any) -> str:
        default = self.defaults.get(name)
        return "" if value == default else html.escape(f" (default {default!r})")


class SettingsMagic:
    """The ``%openjd_config`` line magic: calls ``function``; its help lists the settings as
    they are now (IPython's ``?`` asks ``getdoc()`` before the docstring)."""

    def __init__(self, function: Callable[[str], Settings], settings: Callable[[], Settings]):
        self._function = function
        self._settings = settings
        self.__doc__ = self.getdoc()

    def __call__(self, line: str) -> Settings:
        return self._function(line)

    def getdoc(self) -> str:
        listed = "\n".join(f"    {line}" for line in self._settings().lines())
        return f"{_USAGE}\nSettings now:\n\n{listed}\n"
