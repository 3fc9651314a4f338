"""A CSV manifest: header path,label[,speaker][,group][,gender], one recording per row.

Paths are relative to the CSV's own folder and must stay inside it. A manifest is
written by hand or by a script, so every problem is reported with its line number,
all at once, and nothing is imported until the file is clean: a half-imported
training set would silently skew a model.
"""

from __future__ import annotations

import csv
from pathlib import Path, PurePosixPath

from .base import (
    CorpusError,
    CorpusItem,
    SkipSink,
    normalise_gender,
    sort_items,
    unusable_file_reason,
)
from .folder import UNKNOWN_SPEAKER

DEFAULT_FILENAME = "manifest.csv"
REQUIRED_COLUMNS = ("path", "label")
OPTIONAL_COLUMNS = ("speaker", "group", "gender")
# Enough to show the pattern of a systematic mistake without flooding a page.
MAX_PROBLEMS_SHOWN = 20


def matches(root: Path) -> bool:
    root = Path(root)
    if root.is_file():
        return root.suffix.lower() == ".csv"
    return (root / DEFAULT_FILENAME).is_file()


def scan(
    root: Path, *, filename: str = DEFAULT_FILENAME, skipped: SkipSink = None
) -> list[CorpusItem]:
    """Items listed in a manifest; `root` is the CSV itself or the folder holding `filename`.

    `skipped` is accepted for a uniform call but unused: a manifest names its
    files on purpose, so a bad row is an error, never a silent skip.
    """
    csv_path = Path(root) if Path(root).is_file() else Path(root) / filename
    if not csv_path.is_file():
        raise CorpusError(f"manifest not found: {csv_path.name}")
    base = csv_path.parent.resolve()
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            items, problems = _read_rows(csv.DictReader(handle), base, csv_path.name)
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{csv_path.name} is not UTF-8 text: {exc.reason}") from exc
    if problems:
        shown = problems[:MAX_PROBLEMS_SHOWN]
        more = len(problems) - len(shown)
        message = f"{csv_path.name} has {len(problems)} problem(s):\n" + "\n".join(shown)
        if more:
            message += f"\n... and {more} more"
        raise CorpusError(message, problems=problems)
    if not items:
        raise CorpusError(f"{csv_path.name} lists no recordings")
    return sort_items(items, base)


def _read_rows(reader: csv.DictReader, base: Path, name: str) -> tuple[list[CorpusItem], list[str]]:
    columns = [c.strip().lower() for c in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise CorpusError(
            f"{name} line 1: missing column(s) {', '.join(missing)}; the header must be "
            f"path,label with optional {','.join(OPTIONAL_COLUMNS)}"
        )
    reader.fieldnames = columns
    items: list[CorpusItem] = []
    problems: list[str] = []
    first_seen: dict[Path, int] = {}
    for row in reader:
        line = reader.line_num
        item, problem = _row_item(row, base)
        if problem:
            problems.append(f"line {line}: {problem}")
        elif item is not None:
            if item.path in first_seen:
                problems.append(
                    f"line {line}: {row['path']} already listed on line {first_seen[item.path]}"
                )
                continue
            first_seen[item.path] = line
            items.append(item)
    return items, problems


def _row_item(row: dict[str, str | None], base: Path) -> tuple[CorpusItem | None, str | None]:
    """The row's item, or the problem with it."""
    raw_path = (row.get("path") or "").strip()
    label = (row.get("label") or "").strip()
    if (
        not raw_path
        and not label
        and not any((v or "").strip() for v in row.values() if isinstance(v, str))
    ):
        return None, None  # a blank line in the middle of a hand-edited file
    if not raw_path:
        return None, "empty path"
    if not label:
        return None, f"empty label for {raw_path}"
    relative = PurePosixPath(raw_path.replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts:
        return None, f"path {raw_path} must be relative and stay inside the manifest's folder"
    path = base / relative
    reason = unusable_file_reason(base, path)
    if reason:
        return None, f"{raw_path}: {reason}"
    speaker = (row.get("speaker") or "").strip() or UNKNOWN_SPEAKER
    group = (row.get("group") or "").strip() or speaker
    extra = {
        k: v for k, v in row.items() if k and k not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS and v
    }
    return (
        CorpusItem(
            path=path,
            label=label,
            speaker=speaker,
            group=group,
            gender=normalise_gender(row.get("gender")),
            meta={"columns": extra} if extra else {},
        ),
        None,
    )
