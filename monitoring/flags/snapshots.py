"""Each episode's analysis snapshot: written with its flags whenever its answers change, read by
the pages, the API and the exports, so that nothing re-runs the analysis on a read.

A snapshot holds the episode's rows of ``analyse``'s frames (sessions, levels, events, pattern)
column by column, and a small summary for its caseload row. Its ``version`` ties it to what it
was computed with: the snapshot format, the clinic estimate and the clinic's sensitivity. When a
clinic's parameters change, its episodes are re-snapshotted in the background; until then the
pages show the stored snapshot and say which reference values it used.

A snapshot that is missing, or older than the episode's answers (the analysis task has not run
yet, or failed), is never shown: the reader analyses that episode on the spot, as before, and
``manage.py snapshots_check`` (or ``analyse_stale``) reports or repairs it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from monitoring.analytics import Analysis

#: Bump when the stored layout or what the analysis computes changes: every snapshot of an older
#: format is then out of date (``snapshots_check`` finds them; ``analyse_stale --all`` rewrites).
SNAPSHOT_FORMAT = 2

_FRAMES = ("sessions", "levels", "events", "patterns")


def snapshot_version(*, estimate_id: int | None, sensitivity: str) -> str:
    return f"{SNAPSHOT_FORMAT}:{estimate_id or 0}:{sensitivity}"


@dataclass(frozen=True)
class EpisodeFrames:
    """One episode's analysis: the rows of ``analyse``'s frames that are about it."""

    sessions: pd.DataFrame  # one row per session and scale: score, level, state, baseline ...
    levels: pd.DataFrame  # one row per scale: level, its interval, provisional ...
    events: pd.DataFrame  # one row per flag event
    patterns: pd.DataFrame  # at most one row: the episode's feedback pattern
    k: float  # the rupture rule's multiple of the spread, for the deviations chart
    min_baseline: int  # sessions a baseline needs before it is no longer provisional

    @classmethod
    def of(cls, analysis: Analysis, episode_id: int) -> EpisodeFrames:
        def rows(frame: pd.DataFrame) -> pd.DataFrame:
            return frame[frame["patient"] == episode_id].reset_index(drop=True)

        return cls(
            sessions=rows(analysis.sessions),
            levels=rows(analysis.levels),
            events=rows(analysis.events),
            patterns=rows(analysis.patterns),
            k=float(analysis.config.k),
            min_baseline=int(analysis.config.min_baseline),
        )

    def dump(self) -> dict[str, Any]:
        """As JSON: per frame its columns (NaN and NA as null) and their dtypes."""
        out: dict[str, Any] = {"k": self.k, "min_baseline": self.min_baseline}
        for name in _FRAMES:
            frame: pd.DataFrame = getattr(self, name)
            out[name] = {
                # The order as a list: PostgreSQL's jsonb does not keep the order of object keys.
                "order": [str(col) for col in frame.columns],
                "dtypes": {col: _dtype_name(frame[col].dtype) for col in frame.columns},
                # A categorical's categories and order (the scales' clinical order, not A-Z).
                "categories": {
                    col: {
                        "values": [_plain(v) for v in frame[col].cat.categories],
                        "ordered": bool(frame[col].cat.ordered),
                    }
                    for col in frame.columns
                    if isinstance(frame[col].dtype, pd.CategoricalDtype)
                },
                "columns": {col: _column_values(frame[col]) for col in frame.columns},
            }
        return out

    @classmethod
    def load(cls, data: dict[str, Any]) -> EpisodeFrames:
        frames = {name: _frame_load(data[name]) for name in _FRAMES}
        return cls(**frames, k=float(data["k"]), min_baseline=int(data["min_baseline"]))

    def summary(self) -> dict[str, Any]:
        """Where the episode stands, for its caseload row: the total per answered session, the
        usual level (the latest session's prospective baseline, docs/methods.md 4.1) with the
        number of sessions it is the mean of, the latest session against it (z, in the patient's
        spread), and the feedback pattern."""
        total = self.sessions[(self.sessions["scale"] == "total") & self.sessions["score"].notna()]
        out: dict[str, Any] = {
            "totals": [float(v) for v in total["score"]],
            "level": None,
            "n_baseline": 0,
            "provisional": False,
            "z": None,
            "pattern": "",
        }
        if not total.empty:
            last = total.iloc[-1]
            out["level"] = _float(last["baseline"])
            out["n_baseline"] = int(_float(last["n_baseline"]) or 0)
            out["provisional"] = out["level"] is not None and out["n_baseline"] < self.min_baseline
            if out["level"] is not None:
                out["z"] = _float((last["score"] - last["baseline"]) / last["s_used"])
        if len(self.patterns):
            pattern = str(self.patterns["pattern"].iloc[0])
            out["pattern"] = "" if pattern in ("none", "nan") else pattern
        return out


@dataclass(frozen=True)
class Snapshot:
    """What an episode's pages read: its frames (loaded on demand), its summary, and what it was
    computed with."""

    episode_id: int
    version: str
    analysed_at: datetime | None
    summary: dict[str, Any]
    frames_json: dict[str, Any] | None
    current: bool  # computed with the clinic's present parameters
    live: EpisodeFrames | None = None  # analysed on the read (no usable snapshot yet)

    @property
    def frames(self) -> EpisodeFrames | None:
        if self.live is not None:
            return self.live
        return EpisodeFrames.load(self.frames_json) if self.frames_json else None

    def rows(self, frame: str, *columns: str) -> list[tuple[Any, ...]]:
        """Some columns of one frame as plain tuples (missing values as None), straight from the
        stored JSON: what a page shows without building the frames in pandas."""
        if self.live is not None:
            data = getattr(self.live, frame)[list(columns)].astype(object)
            return [tuple(_plain(v) for v in row) for row in data.itertuples(index=False, name=None)]
        if not self.frames_json:
            return []
        stored = self.frames_json[frame]["columns"]
        return list(zip(*(stored[col] for col in columns), strict=True))

    @property
    def min_baseline(self) -> int:
        if self.live is not None:
            return self.live.min_baseline
        return int(self.frames_json["min_baseline"]) if self.frames_json else 0

    def columns(self, frame: str) -> list[str]:
        if self.live is not None:
            return [str(col) for col in getattr(self.live, frame).columns]
        return list(self.frames_json[frame]["order"]) if self.frames_json else []


def _dtype_name(dtype: Any) -> str:
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    return str(dtype)


def _column_values(column: pd.Series) -> list[Any]:
    values = column.astype(object).tolist() if column.dtype == object else column.tolist()
    return [_plain(v) for v in values]


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _frame_load(data: dict[str, Any]) -> pd.DataFrame:
    """One frame from its stored columns: built at once, then each column cast to its dtype (null
    becomes NaN or NA as the dtype has it)."""
    order = data["order"]
    frame = pd.DataFrame(data["columns"], columns=order)
    categories = data.get("categories", {})
    dtypes: dict[str, Any] = {
        col: pd.CategoricalDtype(categories[col]["values"], ordered=categories[col]["ordered"])
        if col in categories
        else data["dtypes"][col]
        for col in order
    }
    return frame.astype(dtypes) if len(frame) else frame.astype(dtypes, errors="ignore")


def _float(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def frames_equal(left: EpisodeFrames, right: EpisodeFrames) -> list[str]:
    """The differences between two episodes' frames (empty when equal): values to 1e-9,
    categories compared as their labels. For the property test and ``snapshots_check``."""
    problems = []
    if not math.isclose(left.k, right.k) or left.min_baseline != right.min_baseline:
        problems.append("rule parameters differ")
    for name in _FRAMES:
        a, b = (_comparable(getattr(f, name)) for f in (left, right))
        try:
            pd.testing.assert_frame_equal(a, b, check_dtype=False, rtol=1e-9, atol=1e-12)
        except AssertionError as exc:
            problems.append(f"{name}: {str(exc).splitlines()[0]}")
    return problems


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.CategoricalDtype) or out[col].dtype == object:
            out[col] = out[col].astype(str)
        elif str(out[col].dtype) in ("str", "string"):
            out[col] = out[col].astype(object).where(out[col].notna(), None).astype(str)
    return out.reset_index(drop=True)


@dataclass(frozen=True)
class StoredAnalysis:
    """Several episodes' snapshots as one set of frames, laid out as ``analyse`` returns them
    (``patient`` is the episode id): what the exports read."""

    sessions: pd.DataFrame
    levels: pd.DataFrame
    events: pd.DataFrame
    patterns: pd.DataFrame

    @classmethod
    def of(cls, frames: Sequence[EpisodeFrames]) -> StoredAnalysis:
        joined = {}
        for name in _FRAMES:
            frame = pd.concat([getattr(f, name) for f in frames], ignore_index=True)
            frame["patient"] = frame["patient"].astype("int64").astype("category")
            joined[name] = frame
        return cls(**joined)


def frames_by_episode(analysis: Analysis) -> dict[int, EpisodeFrames]:
    """Every episode's frames of a (vectorised) analysis, split in one pass per frame."""
    split = {
        name: {
            int(key): rows.reset_index(drop=True)
            for key, rows in getattr(analysis, name).groupby("patient", observed=True, sort=False)
        }
        for name in _FRAMES
    }
    empty = {name: getattr(analysis, name).iloc[:0] for name in _FRAMES}
    return {
        int(episode_id): EpisodeFrames(
            **{name: split[name].get(int(episode_id), empty[name]) for name in _FRAMES},
            k=float(analysis.config.k),
            min_baseline=int(analysis.config.min_baseline),
        )
        for episode_id in split["sessions"]
    }


def charts_cache_key(episode_id: int) -> str:
    """The cache entry of an episode's rendered patient-page charts (monitoring.care.views)."""
    return f"bordin:charts:{episode_id}"


def charts_cache_forget(episode_ids: Sequence[int]) -> None:
    """Drop the cached charts of these episodes (an erasure: nothing of the patient may stay)."""
    from django.core.cache import cache

    cache.delete_many([charts_cache_key(e) for e in episode_ids])
