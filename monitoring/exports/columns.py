"""What each column of the exports means: the one source of docs/data-dictionary.md.

An exporter declares its columns as :class:`Column` objects (``Exporter.columns``), each with its
meaning, its unit and, for a column of codes, every code with what it means. The codes come from
where the program defines them (the model's choices, the analytics' constants, the bundled
measures' bands), so a new code shows up in the dictionary without anyone remembering to add it.
``manage.py data_dictionary`` writes the dictionary (``monitoring.exports.dictionary``); a test
fails when the committed file differs from what would be written.

The columns several reports share are defined once here; a report's own columns sit in its module.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from clinics.models import Episode
from monitoring.analytics import columns as c
from monitoring.analytics.outcomes import MEASURES

# --- Units -----------------------------------------------------------------------------------------
# Said once so the same quantity reads the same in every report.

TEXT = "text"
CODE = "code (below)"
DATE = "date, YYYY-MM-DD"
TIMESTAMP = "timestamp, ISO 8601 with its UTC offset in the clinic's time zone (2026-09-01T10:15:00+02:00)"
COUNT = "count"
SESSION_NUMBER = "session number"
BOOLEAN = "true/false (XLSX: TRUE/FALSE)"
POINTS = "points on the 1-5 answer scale"
POINT_DIFFERENCE = "points (difference on the 1-5 scale)"
SHARE = "share, 0 to 1 (0.25 = 25%)"
SD_UNITS = "the patient's own SDs (unitless)"


@dataclass(frozen=True)
class Column:
    """One column of an export: its ``name`` in the files, what it means, its unit and, for a
    column of codes, each code with its meaning."""

    name: str
    meaning: str
    unit: str = TEXT
    codes: tuple[tuple[str, str], ...] = ()


def coded(pairs: Iterable[tuple[object, object]]) -> tuple[tuple[str, str], ...]:
    """Codes and their meanings as text (Django's lazy labels included)."""
    return tuple((str(code), str(meaning)) for code, meaning in pairs)


# --- Who and when: the columns every patient-level report starts with ----------------------------

PATIENT = Column(
    "patient",
    "The patient's label in the clinic (e.g. initials). Pseudonymised: a keyed code of 16 hex "
    "digits instead, the same within one export (or one study key), unrelated to anything else.",
)
EXTERNAL_ID = Column(
    "external_id",
    "The health record's identifier of the patient, where the clinic gave one; empty otherwise. "
    "Identifying: left out of pseudonymised exports (item_answers keeps the column, empty).",
)
THERAPIST = Column(
    "therapist",
    "The episode's therapist: full name, or e-mail address when the name is empty. "
    "Pseudonymised: a keyed code of 16 hex digits.",
)
TREATMENT = Column(
    "treatment", "The episode's treatment, as the clinic recorded it.", CODE, coded(Episode.Treatment.choices)
)
EPISODE_START = Column("episode_start", "First day of the episode of care.", DATE)
SESSION = Column(
    "session",
    "Session number within the episode of care (1, 2, ...); numbers follow the session dates.",
    SESSION_NUMBER,
)
DATE_ = Column("date", "The session's date.", DATE)
SCALE = Column(
    "scale",
    "The alliance scale of the row: the three subscales of the 12 items, their total, and goal "
    "and task together.",
    CODE,
    coded(c.SCALE_LABELS.items()),
)
WHO = (PATIENT, EXTERNAL_ID, THERAPIST, TREATMENT, EPISODE_START)


# --- The analysis' figures (docs/methods.md, sections 2 and 4) ------------------------------------

SCORE = Column(
    "score",
    "The session's score on the scale: the mean of its answered items (1-5), reverse-keyed items "
    "turned round.",
    POINTS,
)
LEVEL = Column(
    "level",
    "The patient's long-run level: the mean of all their scores on the scale up to the period's end "
    "(the person mean, methods.md section 2). Retrospective; the flags never use it.",
    POINTS,
)
BASELINE = Column(
    "baseline",
    "The usual level the flag rules compared this session with: the mean of the patient's earlier "
    "sessions outside ruptures (prospective: nothing from this session or later; methods.md 4.1). "
    "Empty at the first session.",
    POINTS,
)
S_USED = Column(
    "s_used",
    "The spread the flag rules used at this session: the patient's session-to-session SD shrunk "
    "towards the clinic's, floored at the measurement error (methods.md 4.1). A rupture's bound is "
    "a multiple of it below the baseline.",
    POINT_DIFFERENCE,
)


def symptom_columns_documented() -> tuple[Column, ...]:
    """The symptom measures' columns as the bundled measures give them (``phq9``, ``phq9_band``,
    ``gad7``, ``gad7_band``); a measure a clinic loads adds its own pair the same way."""
    out: list[Column] = []
    for spec in MEASURES.values():
        out.append(
            Column(
                spec.code,
                f"The session's {spec.name} total ({spec.items} items scored {spec.item_min}-"
                f"{spec.item_max}; higher is worse; prorated with at most {spec.max_missing} item "
                f"missing, else empty; methods.md 6.1). Empty where not answered.",
                f"points, 0 to {spec.max_score}",
            )
        )
        bands = [
            (
                label,
                f"{lowest} to {spec.bands[i + 1][0] - 1}" if i + 1 < len(spec.bands) else f"{lowest} or more",
            )
            for i, (lowest, label) in enumerate(spec.bands)
        ]
        out.append(
            Column(
                f"{spec.code}_band",
                f"The severity band of the {spec.name} total (empty where there is no total).",
                CODE,
                tuple((label, f"total {words}") for label, words in bands),
            )
        )
    return tuple(out)
