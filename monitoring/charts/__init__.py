"""Analysis results -> plotly figure dicts for the therapist's patient page, and the caseload sparkline.

Pure: numpy and pandas only, no Django and no plotly import (the figures are written as the plain
dicts plotly.js reads). Each chart function takes frames of :func:`monitoring.analytics.analyse`
filtered to ONE patient (an episode) and returns a :class:`Chart`:

- ``figure``: ``{"data": [...], "layout": {...}}``, JSON-ready (Python ints, floats, strings, None for
  missing; no NaN), emitted with Django's ``json_script`` and drawn by ``static/js/charts.js`` with the
  vendored strict build of plotly.js (the page's CSP has no 'unsafe-eval'). The JS sets the plotly
  ``config`` (no logo, responsive, no lasso/select).
- ``summary``: the text alternative, in plain clinical English with the numbers.
- ``columns`` / ``rows``: a data table of the same numbers, every cell a string.

Empty inputs (no sessions yet) give a valid Chart saying "No answers yet." rather than an error;
frames holding more than one patient are a programming error (``ValueError``).

Palette: Okabe-Ito hues (colour-blind safe), always paired with a distinct marker shape, on the
site's ink and accent colours (``static/css/bordin.css``); text colours meet WCAG AA on white.

One module per chart, each with its builder and its summary text; callers import this package
(``from monitoring import charts; charts.trajectory(...)``), which re-exports them:

- :mod:`.trajectory`: the total per session against the long-run level, with the flags.
- :mod:`.deviations`: distance from the baseline against the rupture threshold.
- :mod:`.subscales`: small multiples of the subscales with their declining trends.
- :mod:`.raters`: patient and therapist totals and their difference.
- :mod:`.symptoms`: alliance and symptoms (PHQ-9, GAD-7) on one timeline, with bands.
- :mod:`.review`: the patient's own course in their words, for reviewing it together (no flags).
- :mod:`.sparkline`: the caseload's inline SVG (:func:`sparkline_svg`).
- :mod:`.clinic`: the clinic report's completion per month and spread of long-run levels.
- :mod:`._style`: colours, markers, sizes, :class:`Chart`, layout and axis helpers, frame helpers
  and number formatting; :mod:`._events`: the flag markers and hover text shared by the charts.
"""

from __future__ import annotations

from monitoring.charts._style import (
    ACCENT,
    AXIS,
    BAND,
    DECLINE_SHADE,
    EARLY_BAR,
    GRID,
    HEIGHT,
    HEIGHT_PANELS,
    INK,
    LEVEL,
    MARKERS,
    MINUS,
    MUTED,
    NEUTRAL_BAR,
    SCALE_MAX,
    SCALE_MIN,
    THERAPIST,
    TIMES,
    Chart,
)
from monitoring.charts.clinic import completion_by_month, level_distribution
from monitoring.charts.deviations import MIN_BASELINE, deviations
from monitoring.charts.raters import raters
from monitoring.charts.review import review_alliance, review_symptoms
from monitoring.charts.sparkline import sparkline_svg
from monitoring.charts.subscales import SUBSCALE_PANELS, subscales
from monitoring.charts.symptoms import symptoms
from monitoring.charts.trajectory import trajectory

#: Bump with any change to what a chart draws: cached patient-page charts are keyed on it.
CHARTS_FORMAT = 3

__all__ = [
    "ACCENT",
    "AXIS",
    "BAND",
    "CHARTS_FORMAT",
    "DECLINE_SHADE",
    "EARLY_BAR",
    "GRID",
    "HEIGHT",
    "HEIGHT_PANELS",
    "INK",
    "LEVEL",
    "MARKERS",
    "MINUS",
    "MIN_BASELINE",
    "MUTED",
    "NEUTRAL_BAR",
    "SCALE_MAX",
    "SCALE_MIN",
    "SUBSCALE_PANELS",
    "THERAPIST",
    "TIMES",
    "Chart",
    "completion_by_month",
    "deviations",
    "level_distribution",
    "raters",
    "review_alliance",
    "review_symptoms",
    "sparkline_svg",
    "subscales",
    "symptoms",
    "trajectory",
]
