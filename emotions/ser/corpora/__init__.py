"""Importers for emotional-speech corpora: one module per public layout.

Each module exposes `scan(root, **options) -> list[CorpusItem]` and
`matches(root) -> bool`. `detect` tries them from the most specific layout to the
most generic, so a SAVEE tree is not mistaken for a plain labelled folder.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from . import cremad, emodb, folder, iemocap, manifest, ravdess, savee, tess
from .base import (
    AUDIO_EXTENSIONS,
    CorpusError,
    CorpusItem,
    SkippedFile,
    apply_label_map,
    only_labels,
)

# Order matters for detect(): specific layouts before the generic folder.
LAYOUTS: dict[str, ModuleType] = {
    "manifest": manifest,
    "iemocap": iemocap,
    "ravdess": ravdess,
    "cremad": cremad,
    "emodb": emodb,
    "tess": tess,
    "savee": savee,
    "folder": folder,
}

__all__ = [
    "AUDIO_EXTENSIONS",
    "LAYOUTS",
    "CorpusError",
    "CorpusItem",
    "SkippedFile",
    "apply_label_map",
    "detect",
    "only_labels",
    "scan",
]


def detect(root: Path) -> str | None:
    """The name of the first layout in LAYOUTS that recognises `root`, or None."""
    root = Path(root)
    if not root.exists():
        return None
    for name, module in LAYOUTS.items():
        if module.matches(root):
            return name
    return None


def scan(root: Path, layout: str | None = None, **options: object) -> list[CorpusItem]:
    """Scan `root` with the named layout, or the detected one when `layout` is None."""
    name = layout or detect(root)
    if name is None:
        raise CorpusError(
            "could not recognise the corpus layout: expected a known corpus "
            "(IEMOCAP, RAVDESS, CREMA-D, EmoDB, TESS, SAVEE), label folders or a manifest.csv"
        )
    if name not in LAYOUTS:
        raise CorpusError(f"unknown corpus layout {name!r}; known: {', '.join(LAYOUTS)}")
    return LAYOUTS[name].scan(Path(root), **options)
