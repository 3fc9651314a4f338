"""The printable report of a lecture as PDF, drawn with matplotlib's PDF backend (no
system packages). Pure: a Timeline and two plain dicts in, bytes out."""

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from emotions.ser.report import (
    NO_SPEECH_CODE,
    NON_SPEECH_COLOUR,
    SILENCE_CODE,
    Timeline,
    clock,
    colours_for,
)

A4 = (8.27, 11.69)  # inches, portrait
# Timeline rows: at most this many minutes per row, this many rows per page, so a 3 h
# lecture is 9 rows on 3 pages and a 10 s one a single short row.
MINUTES_PER_ROW = 20
ROWS_PER_PAGE = 4
DASHES = ["-", "--", ":", "-."]


@dataclass(frozen=True)
class PdfHeader:
    title: str
    course: str = ""
    recorded_on: str = ""
    original_name: str = ""
    created: str = ""


def report_pdf(header: PdfHeader, model: dict | None, timeline: Timeline) -> bytes:
    """Page 1: the lecture, the model card, shares and top moments; then the timeline."""
    import matplotlib
    from matplotlib.backends.backend_pdf import PdfPages

    out = io.BytesIO()
    metadata = {"Title": header.title, "Subject": "Emotions in a lecture", "Creator": "sersite"}
    # parse_math off: titles and labels are user text, and "$...$" would be read as mathtext
    # (a stray "$\\foo$" made saving the PDF fail).
    with matplotlib.rc_context({"pdf.fonttype": 3, "font.size": 9, "text.parse_math": False}):
        with PdfPages(out, metadata=metadata) as pdf:
            pdf.savefig(_first_page(header, model, timeline))
            for figure in _timeline_pages(header, timeline):
                pdf.savefig(figure)
    return out.getvalue()


def _first_page(header: PdfHeader, model: dict | None, timeline: Timeline):
    from matplotlib.figure import Figure

    fig = Figure(figsize=A4)
    y = _Writer(fig)
    y.line(header.title, size=18, weight="bold")
    facts = [header.course, header.recorded_on, f"length {clock(timeline.duration_s)}"]
    y.line(" · ".join(f for f in facts if f), size=10, colour="#333333")
    if header.original_name:
        y.line(f"Recording: {header.original_name}", size=8, colour="#555555")
    y.gap()
    y.line("Model", size=12, weight="bold")
    if model is None:
        y.line("The model of this analysis was deleted.", colour="#555555")
    else:
        y.line(f"{model['name']} v{model['version']} ({model['backbone']})")
        y.line("Emotions: " + ", ".join(model["labels"]))
        if model.get("provenance"):
            y.line(f"Starting weights: {model['provenance']}", colour="#333333")
        for notice in model.get("notices", []):
            y.line(f"Notice: {notice}", colour="#9A2A00", weight="bold")
        for line in model.get("evaluation", []) or ["No evaluation recorded."]:
            y.line(f"Evaluation {line}", colour="#333333")
    y.gap()
    y.line("Summary", size=12, weight="bold")
    speech = timeline.speech_seconds()
    y.line(
        f"Speech {clock(speech)} · silence {clock(timeline.seconds_of(SILENCE_CODE))}"
        f" · no speech {clock(timeline.seconds_of(NO_SPEECH_CODE))}"
        f" · smoothing {timeline.window} s"
    )
    shares = timeline.shares()
    colours = colours_for(timeline.labels)
    if speech and shares:
        bottom = y.take(0.06 + 0.02 * len(shares))
        ax = fig.add_axes((0.3, bottom + 0.04, 0.55, 0.02 * len(shares)))
        names = list(shares)[::-1]
        ax.barh(names, [100 * shares[n] for n in names], color=[colours[n] for n in names])
        for i, n in enumerate(names):
            ax.text(100 * shares[n] + 1, i, f"{100 * shares[n]:.1f} %", va="center", fontsize=8)
        ax.set_xlim(0, 110)
        ax.set_xlabel("share of speech time (%)")
        ax.spines[["top", "right"]].set_visible(False)
    else:
        y.line("No speech was found, so there are no emotions to report.")
    y.gap()
    y.line("Top moments (longest and most confident stretches)", size=12, weight="bold")
    any_moment = False
    for label, runs in timeline.top_moments.items():
        for run in runs:
            any_moment = True
            y.line(
                f"{label}:  {clock(run.start_s)} to {clock(run.end_s)}"
                f"  ({run.seconds:.0f} s, {100 * (run.confidence or 0):.0f} %)"
            )
    if not any_moment:
        y.line("None.")
    y.gap()
    y.line("The minute band and the timeline follow on the next page.", colour="#555555")
    return fig


class _Writer:
    """Lines of text down a page, in figure coordinates."""

    def __init__(self, fig) -> None:
        self.fig = fig
        self.y = 0.95

    def line(self, text: str, *, size: float = 9, weight: str = "normal", colour="#000000"):
        self.fig.text(0.07, self.y, text, fontsize=size, weight=weight, color=colour, va="top")
        self.y -= 0.012 + size / 11.69 / 72 * 1.6

    def gap(self) -> None:
        self.y -= 0.012

    def take(self, height: float) -> float:
        """Room for a chart: its bottom edge."""
        self.y -= height
        return self.y


def _timeline_pages(header: PdfHeader, timeline: Timeline):
    from matplotlib.figure import Figure

    duration = max(timeline.duration_s, 1.0)
    # A last minute or less joins the row before instead of getting a row of its own.
    rows = max(1, math.ceil((duration - 60.0) / (MINUTES_PER_ROW * 60.0)))
    row_s = duration / rows if rows == 1 else MINUTES_PER_ROW * 60.0
    colours = colours_for(timeline.labels)
    for page_start in range(0, rows, ROWS_PER_PAGE):
        fig = Figure(figsize=A4)
        fig.text(0.07, 0.965, f"{header.title}: timeline", fontsize=12, weight="bold")
        _legend(fig, timeline.labels, colours)
        page_rows = range(page_start, min(rows, page_start + ROWS_PER_PAGE))
        for slot, row in enumerate(page_rows):
            t0 = row * row_s
            t1 = duration if row == rows - 1 else (row + 1) * row_s
            top = 0.88 - slot * 0.215
            band = fig.add_axes((0.08, top - 0.018, 0.86, 0.014))
            _minute_band(band, timeline, t0, t1, row_s)
            _timeline_row(fig.add_axes((0.08, top - 0.175, 0.86, 0.15)), timeline, t0, t1, row_s)
        yield fig


def _legend(fig, labels: Sequence[str], colours: dict) -> None:
    x = 0.07
    for label in labels:
        fig.patches.append(_swatch(fig, x, colours[label]))
        fig.text(x + 0.022, 0.935, label, fontsize=8, va="center")
        x += 0.03 + 0.012 * len(label)
    fig.patches.append(_swatch(fig, x, "white", hatch="////"))
    fig.text(x + 0.022, 0.935, "silence / no speech", fontsize=8, va="center")
    fig.text(
        0.07, 0.915, "Top strip: dominant emotion per minute. Band: emotion per second.",
        fontsize=7, color="#444444",
    )  # fmt: skip


def _swatch(fig, x: float, colour: str, hatch: str | None = None):
    from matplotlib.patches import Rectangle

    return Rectangle(
        (x, 0.929), 0.016, 0.012, transform=fig.transFigure, facecolor=colour,
        edgecolor=NON_SPEECH_COLOUR, hatch=hatch, linewidth=0.5,
    )  # fmt: skip


def _minute_band(ax, timeline: Timeline, t0: float, t1: float, row_s: float) -> None:
    colours = colours_for(timeline.labels)
    for m in timeline.per_minute:
        start, end = m.minute * 60.0, m.minute * 60.0 + 60.0
        if end <= t0 or start >= t1:
            continue
        if m.label is None:
            ax.broken_barh([(start, min(end, t1) - start)], (0, 1), facecolor="white",
                           edgecolor=NON_SPEECH_COLOUR, hatch="////", linewidth=0)  # fmt: skip
        else:
            ax.broken_barh([(start, min(end, t1) - start)], (0, 1), facecolor=colours[m.label],
                           linewidth=0)  # fmt: skip
    ax.set_xlim(t0, t0 + row_s)
    ax.set_axis_off()


def _timeline_row(ax, timeline: Timeline, t0: float, t1: float, row_s: float) -> None:
    colours = colours_for(timeline.labels)
    band_h = 0.18
    # One collection per emotion (not one per run): a 3 h lecture has thousands of runs.
    spans: dict[str, list[tuple[float, float]]] = {}
    for run in timeline.runs:
        if run.end_s > t0 and run.start_s < t1:
            spans.setdefault(run.label, []).append((run.start_s, run.end_s - run.start_s))
    for label, parts in spans.items():
        if label in colours:
            ax.broken_barh(parts, (1.02, band_h), facecolor=colours[label], linewidth=0)
        else:
            ax.broken_barh(parts, (1.02, band_h), facecolor="white", linewidth=0,
                           edgecolor=NON_SPEECH_COLOUR, hatch="////")  # fmt: skip
    here = (timeline.end_s > t0) & (timeline.start_s < t1)
    mid = (timeline.start_s[here] + timeline.end_s[here]) / 2
    speech = timeline.raw[here] >= 0
    for j, label in enumerate(timeline.labels):
        values = np.where(speech, timeline.smoothed[here, j], np.nan)
        ax.plot(mid, values, color=colours[label], linewidth=0.8, linestyle=DASHES[j % 4])
    ax.set_xlim(t0, t0 + row_s)
    ax.set_ylim(0, 1.22)
    ax.set_yticks([0, 0.5, 1.0], ["0", "0.5", "1"])
    ax.set_ylabel("probability", fontsize=7)
    ticks = _ticks(t0, t0 + row_s)
    ax.set_xticks(ticks, [clock(t) for t in ticks], fontsize=7)
    ax.spines[["top", "right"]].set_visible(False)


def _ticks(t0: float, t1: float) -> list[float]:
    span = t1 - t0
    step = next(s for s in (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600) if span / s <= 10)
    first = math.ceil(t0 / step) * step
    return [float(t) for t in np.arange(first, t1 + 1e-9, step)]
