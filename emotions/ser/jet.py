"""matplotlib's "jet" colour map as a 256-entry uint8 lookup table, without matplotlib or torch
(both spectrogram paths, torch's and numpy's, colour their images with it)."""

import numpy as np

N_LEVELS = 256

# matplotlib's "jet" (matplotlib/_cm.py): (x, value below x, value above x) per channel.
_JET_SEGMENTS = {
    "red": ((0.0, 0, 0), (0.35, 0, 0), (0.66, 1, 1), (0.89, 1, 1), (1.0, 0.5, 0.5)),
    "green": ((0.0, 0, 0), (0.125, 0, 0), (0.375, 1, 1), (0.64, 1, 1), (0.91, 0, 0), (1.0, 0, 0)),
    "blue": ((0.0, 0.5, 0.5), (0.11, 1, 1), (0.34, 1, 1), (0.65, 0, 0), (1.0, 0, 0)),
}


def _segment_channel(points: tuple[tuple[float, float, float], ...], n: int) -> np.ndarray:
    # The same arithmetic as matplotlib.colors._create_lookup_table (gamma 1), so that the
    # truncation to bytes below lands on the same integers as matplotlib's.
    data = np.asarray(points, dtype=float)
    x, y0, y1 = data[:, 0] * (n - 1), data[:, 1], data[:, 2]
    xind = (n - 1) * np.linspace(0, 1, n)
    ind = np.searchsorted(x, xind)[1:-1]
    distance = (xind[1:-1] - x[ind - 1]) / (x[ind] - x[ind - 1])
    inner = distance * (y0[ind] - y1[ind - 1]) + y1[ind - 1]
    return np.clip(np.concatenate([[y1[0]], inner, [y0[-1]]]), 0.0, 1.0)


def _jet_lut(n: int = N_LEVELS) -> np.ndarray:
    rgb = np.stack([_segment_channel(_JET_SEGMENTS[c], n) for c in ("red", "green", "blue")], 1)
    lut = (rgb * 255).astype(np.uint8)  # truncation, as matplotlib's cmap(..., bytes=True)
    lut.setflags(write=False)
    return lut


JET_LUT: np.ndarray = _jet_lut()  # (256, 3) uint8, level -> RGB
