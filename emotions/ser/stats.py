"""Per-class statistics of a labelled set, as in the method's Tables 2 and 3.

For each emotion: the number of utterances, of original 1 s blocks, and of blocks after the
noise mix-up, which keeps every original block and adds one noisy copy per SNR:

    generated blocks = original blocks x (1 + number of SNRs)

The input is one ``(label, number of blocks)`` pair per utterance; count an utterance's blocks
with :func:`emotions.ser.audio.count_blocks` (same tail policy as the splitting). An
utterance shorter than the minimum tail gives 0 blocks: it still counts as an utterance.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .constants import DEFAULT_SNRS_DB


@dataclass(frozen=True)
class ClassCounts:
    label: str
    utterances: int
    original_blocks: int
    generated_blocks: int


@dataclass(frozen=True)
class DatasetTable:
    rows: tuple[ClassCounts, ...]  # one per class, in the table's order
    total: ClassCounts  # label "Total"
    snrs_db: tuple[float, ...]

    def as_dicts(self) -> list[dict]:
        """Rows then the total, as plain dicts (for JSON, templates, CSV)."""
        return [
            {
                "label": r.label,
                "utterances": r.utterances,
                "original_blocks": r.original_blocks,
                "generated_blocks": r.generated_blocks,
            }
            for r in (*self.rows, self.total)
        ]


def class_table(
    utterance_blocks: Iterable[tuple[str, int]],
    snrs_db: Sequence[float] = DEFAULT_SNRS_DB,
    labels: Sequence[str] | None = None,
) -> DatasetTable:
    """Count utterances and blocks per class.

    ``labels`` fixes the order of the rows (and includes classes with no utterance as zero
    rows); a label found in the data but not in ``labels`` raises ``ValueError``. Without
    ``labels`` the rows are sorted by label.
    """
    copies = 1 + len(snrs_db)
    utterances: dict[str, int] = {}
    blocks: dict[str, int] = {}
    for label, n_blocks in utterance_blocks:
        if n_blocks < 0:
            raise ValueError(f"negative block count for an utterance of class {label!r}")
        utterances[label] = utterances.get(label, 0) + 1
        blocks[label] = blocks.get(label, 0) + int(n_blocks)

    if labels is None:
        order = sorted(utterances)
    else:
        unknown = sorted(set(utterances) - set(labels))
        if unknown:
            raise ValueError(f"labels not in the table's classes: {unknown}")
        order = list(labels)

    rows = tuple(
        ClassCounts(
            label=label,
            utterances=utterances.get(label, 0),
            original_blocks=blocks.get(label, 0),
            generated_blocks=blocks.get(label, 0) * copies,
        )
        for label in order
    )
    total = ClassCounts(
        label="Total",
        utterances=sum(r.utterances for r in rows),
        original_blocks=sum(r.original_blocks for r in rows),
        generated_blocks=sum(r.generated_blocks for r in rows),
    )
    return DatasetTable(rows=rows, total=total, snrs_db=tuple(float(s) for s in snrs_db))


def format_table(table: DatasetTable) -> str:
    """Plain-text table, one line per class and a total line."""
    snrs = ", ".join(f"{s:g}" for s in table.snrs_db) or "none"
    header = ("Class", "Utterances", "Original blocks", f"Generated blocks (SNRs {snrs} dB)")
    lines = [
        (r.label, str(r.utterances), str(r.original_blocks), str(r.generated_blocks))
        for r in (*table.rows, table.total)
    ]
    widths = [max(len(row[i]) for row in (header, *lines)) for i in range(len(header))]

    def fmt(row: tuple[str, ...]) -> str:
        first = row[0].ljust(widths[0])
        return "  ".join(
            [first, *(cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True))]
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), rule, *(fmt(r) for r in lines[:-1]), rule, fmt(lines[-1])])
