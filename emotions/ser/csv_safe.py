"""CSV that is safe to open in a spreadsheet: every export writes through writer() here.

A cell starting with = + - @ (or a tab or carriage return) is run as a formula by Excel,
LibreOffice and Google Sheets; labels, names and speakers come from users, so such a
cell could fetch a URL or run a command on the reader's machine (OWASP "CSV injection").
Those cells get a leading single quote, which spreadsheets show as text. Plain numbers
("-5", "+1.5e3") cannot be formulas and stay as they are, so figures remain figures.
"""

import csv
import re
from collections.abc import Iterable
from typing import IO, Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def neutralise(value: Any) -> Any:
    """The cell as a spreadsheet will show it, never run it."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        if not _NUMBER.fullmatch(value):
            return "'" + value
    return value


class SafeWriter:
    """csv.writer with every cell passed through neutralise()."""

    def __init__(self, out: IO[str], **kwargs: Any) -> None:
        self._writer = csv.writer(out, **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([neutralise(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(out: IO[str], **kwargs: Any) -> SafeWriter:
    """Like csv.writer(out, **kwargs), for files people open in spreadsheets."""
    return SafeWriter(out, **kwargs)
