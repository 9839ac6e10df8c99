"""Small charts for notifications: a sparkline of a KPI's recent periods, as PNG bytes.

Drawn with matplotlib's object API on the Agg canvas, never pyplot: pyplot keeps global
figure state, and these are drawn in the scheduler's thread while the server serves others.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DPI = 100
LINE_COLOUR = "#1f5fa8"
TARGET_COLOUR = "#9aa5b1"
TITLE_COLOUR = "#333333"
# Where the plot sits in the image, as fractions of it: room above for the title.
PLOT_AREA = (0.03, 0.08, 0.94, 0.64)


def sparkline_png(
    values: Sequence[float | None],
    *,
    title: str,
    width_px: int = 480,
    height_px: int = 120,
    target: float | None = None,
) -> bytes:
    """A titled line of `values` (a gap for each None) with the last value marked, and a light
    dashed line at `target` when given. The same input gives the same bytes: the PNG carries
    no timestamp or software version."""
    figure = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    FigureCanvasAgg(figure)  # draws on the Agg canvas, whatever the default backend
    figure.text(0.03, 0.94, title, fontsize=10, color=TITLE_COLOUR, va="top", ha="left")
    axes = figure.add_axes(PLOT_AREA)
    _draw_line(axes, values)
    if target is not None:
        axes.axhline(target, color=TARGET_COLOUR, linewidth=1, linestyle="--")
    _strip(axes, len(values))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _draw_line(axes: Axes, values: Sequence[float | None]) -> None:
    ys = [math.nan if value is None else value for value in values]
    xs = list(range(len(ys)))
    axes.plot(xs, ys, color=LINE_COLOUR, linewidth=1.8, solid_capstyle="round")
    last = _last_present(ys)
    if last is not None:
        axes.plot([last], [ys[last]], marker="o", markersize=5, color=LINE_COLOUR)


def _last_present(ys: Sequence[float]) -> int | None:
    """The index of the last value that is there, to mark where the KPI stands now."""
    for index in range(len(ys) - 1, -1, -1):
        if not math.isnan(ys[index]):
            return index
    return None


def _strip(axes: Axes, count: int) -> None:
    """No axes, ticks or frame: a sparkline shows the shape, the text beside it the figures.
    A little room at each end keeps the marker of the last value whole."""
    axes.set_axis_off()
    axes.set_xlim(-0.5, max(count, 1) - 0.5)
    axes.margins(y=0.15)
