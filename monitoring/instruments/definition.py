"""Instrument definitions: the JSON format and its validation.

A definition file describes one instrument version in one language::

    {"code": "bordin-alliance", "version": 1, "language": "en", "rater": "patient",
     "name": "...", "instructions": "...", "source": "...",
     "scale": {"min": 1, "max": 5, "labels": ["Seldom", ..., "Always"]},
     "subscales": [{"code": "goal", "name": "Goal agreement"}, ...],
     "items": [{"number": 1, "subscale": "task", "keying": "positive", "text": "..."}, ...]}

An outcome measure (PHQ-9, GAD-7, or one a clinic holds a licence for: CORE-10, OQ-45, ORS) adds
``"kind": "outcome"`` and its scoring as data; items may carry a ``code`` (LOINC) and the scale
its answer ``codes``::

    "kind": "outcome",
    "scoring": {"higher_is_worse": true, "max_missing": 1, "missing_rule": "... (source)",
                "bands": [{"from": 0, "label": "minimal"}, {"from": 5, "label": "mild"}, ...],
                "cutoff": 10, "reliable_change": 6, "reliability": 0.89, "sd": null,
                "risk_items": [9], "loinc": {"panel": "44249-1", "total": "44261-6"}},

``parse_definition`` checks everything and reports every problem at once, each in its own
words, so that whoever prepares a licensed wording or a translation can fix the file in one go.
Pure Python: no Django import.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clinics.errors import ApplicationError

REQUIRED_SUBSCALES = ("goal", "task", "bond")
# The analysis thresholds (SEM, RC, rupture distances) are in points of a 1-5 scale.
SUPPORTED_SCALE = (1, 5)
KINDS = ("alliance", "outcome")
#: The longest name and source text the database holds (InstrumentTranslation).
MAX_NAME = 200
MAX_SOURCE = 500
#: Outcome measures' answers: any whole-number scale within 0-10 (PHQ-9 and GAD-7 0-3, OQ-45 0-4,
#: CORE-10 0-4, ORS 0-10).
OUTCOME_SCALE = (0, 10)
KEYINGS = ("positive", "reverse")
RATERS = ("patient", "therapist")
_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")


@dataclass(frozen=True)
class ItemDefinition:
    number: int
    subscale: str
    reverse_keyed: bool
    text: str
    code: str = ""


@dataclass(frozen=True)
class InstrumentDefinition:
    code: str
    version: int
    language: str
    rater: str
    name: str
    instructions: str
    source: str
    scale_min: int
    scale_max: int
    scale_labels: tuple[str, ...]
    subscales: tuple[str, ...]
    subscale_names: dict[str, str]
    items: tuple[ItemDefinition, ...]
    kind: str = "alliance"
    scoring: dict[str, Any] = field(default_factory=dict)

    def structure(self) -> dict[str, Any]:
        """What answers and scores depend on; two languages of one version must agree on it."""
        return {
            "rater": self.rater,
            "kind": self.kind,
            "scale": [self.scale_min, self.scale_max],
            "subscales": list(self.subscales),
            "items": [[i.number, i.subscale, i.reverse_keyed, i.code] for i in self.items],
            "scoring": self.scoring,
        }


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(data: dict[str, Any], key: str, problems: list[str], *, required: bool = True) -> str:
    value = data.get(key, "")
    if not isinstance(value, str) or (required and not value.strip()):
        problems.append(f"'{key}' must be a non-empty text.")
        return ""
    return value.strip()


def parse_definition(data: Any) -> InstrumentDefinition:
    """Validate a decoded definition; raise ApplicationError listing every problem found."""
    if not isinstance(data, dict):
        raise ApplicationError("An instrument definition must be a JSON object.")
    problems: list[str] = []

    code = data.get("code")
    if not isinstance(code, str) or not _CODE.match(code):
        problems.append("'code' must be lower-case letters, digits and hyphens, e.g. 'bordin-alliance'.")
    version: Any = data.get("version")
    if not _is_int(version) or version < 1:
        problems.append("'version' must be a whole number of 1 or more.")
    language = data.get("language")
    if not isinstance(language, str) or not _LANGUAGE.match(language):
        problems.append("'language' must be a language code such as 'en' or 'de'.")
    rater = data.get("rater")
    if rater not in RATERS:
        problems.append(f"'rater' must be one of {', '.join(RATERS)}.")
    name = _text(data, "name", problems)
    instructions = _text(data, "instructions", problems, required=False)
    source = _text(data, "source", problems, required=False)
    for key, value, limit in (("name", name, MAX_NAME), ("source", source, MAX_SOURCE)):
        if len(value) > limit:
            problems.append(f"'{key}' is {len(value)} characters long; at most {limit} fit.")

    scale = data.get("scale")
    scale_min: Any = 0
    scale_max: Any = 0
    labels: tuple[str, ...] = ()
    if not isinstance(scale, dict):
        problems.append("'scale' must be an object with 'min', 'max' and 'labels'.")
    else:
        scale_min, scale_max = scale.get("min"), scale.get("max")
        if not (_is_int(scale_min) and _is_int(scale_max)):
            problems.append("Scale 'min' and 'max' must be whole numbers.")
        elif scale_min >= scale_max:
            problems.append(f"Scale 'min' ({scale_min}) must be below 'max' ({scale_max}).")
        elif data.get("kind") == "outcome":
            if not OUTCOME_SCALE[0] <= scale_min < scale_max <= OUTCOME_SCALE[1]:
                problems.append(
                    f"Scale {scale_min}-{scale_max} is not supported for an outcome measure: answers must lie "
                    f"within {OUTCOME_SCALE[0]}-{OUTCOME_SCALE[1]}."
                )
        elif (scale_min, scale_max) != SUPPORTED_SCALE:
            problems.append(
                f"Scale {scale_min}-{scale_max} is not supported: Bordin's analysis thresholds are in "
                "points of a 1-5 scale, so the scale must run from 1 to 5."
            )
        raw_labels = scale.get("labels")
        if not isinstance(raw_labels, list) or not all(isinstance(x, str) and x.strip() for x in raw_labels):
            problems.append("Scale 'labels' must be a list of non-empty texts, one per scale value.")
        else:
            labels = tuple(x.strip() for x in raw_labels)
            if _is_int(scale_min) and _is_int(scale_max) and len(labels) != scale_max - scale_min + 1:
                problems.append(
                    f"Scale has {scale_max - scale_min + 1} values but {len(labels)} labels; give one label per value."
                )

    subscales: list[str] = []
    subscale_names: dict[str, str] = {}
    raw_subscales = data.get("subscales")
    if not isinstance(raw_subscales, list) or not raw_subscales:
        problems.append("'subscales' must be a non-empty list.")
    else:
        for position, entry in enumerate(raw_subscales, start=1):
            sub_code = entry.get("code") if isinstance(entry, dict) else None
            if not isinstance(sub_code, str) or not sub_code:
                problems.append(f"Subscale {position} needs a 'code'.")
                continue
            if sub_code in subscales:
                problems.append(f"Subscale '{sub_code}' is listed twice.")
                continue
            subscales.append(sub_code)
            subscale_names[sub_code] = str(entry.get("name") or sub_code)
        missing = [s for s in REQUIRED_SUBSCALES if s not in subscales]
        if missing and data.get("kind", "alliance") == "alliance":
            problems.append(
                "Bordin's analysis needs the subscales goal, task and bond; missing: "
                + ", ".join(missing)
                + "."
            )

    items: list[ItemDefinition] = []
    raw_items = data.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        problems.append("'items' must be a non-empty list.")
    else:
        seen: set[int] = set()
        for position, entry in enumerate(raw_items, start=1):
            if not isinstance(entry, dict):
                problems.append(f"Item {position} must be an object.")
                continue
            number: Any = entry.get("number")
            where = f"Item {number}" if _is_int(number) else f"Item at position {position}"
            if not _is_int(number) or number < 1:
                problems.append(f"{where}: 'number' must be a whole number of 1 or more.")
                continue
            if number in seen:
                problems.append(f"{where}: the number {number} is used twice; each item needs its own.")
                continue
            seen.add(number)
            subscale = entry.get("subscale")
            if subscale not in subscales:
                problems.append(f"{where}: subscale '{subscale}' is not one of the listed subscales.")
            keying = entry.get("keying", "positive")
            if keying not in KEYINGS:
                problems.append(f"{where}: 'keying' must be 'positive' or 'reverse', not '{keying}'.")
            text = entry.get("text")
            if not isinstance(text, str) or not text.strip():
                problems.append(f"{where}: 'text' must be the item's wording.")
                text = ""
            item_code = entry.get("code", "")
            if not isinstance(item_code, str):
                problems.append(f"{where}: 'code' must be a text (a LOINC code such as '44250-9').")
                item_code = ""
            items.append(ItemDefinition(number, str(subscale), keying == "reverse", text.strip(), item_code))
        if seen and sorted(seen) != list(range(1, len(seen) + 1)):
            problems.append(f"Item numbers must run 1 to {len(seen)} without gaps; found {sorted(seen)}.")
        for sub in subscales:
            if not any(i.subscale == sub for i in items):
                problems.append(f"Subscale '{sub}' has no items.")

    kind = data.get("kind", "alliance")
    scoring: dict[str, Any] = {}
    if kind not in KINDS:
        problems.append(f"'kind' must be one of {', '.join(KINDS)}, not '{kind}'.")
    elif kind == "outcome":
        scoring = _scoring(data.get("scoring"), len(items), scale, problems)

    if problems:
        raise ApplicationError("The instrument definition is not valid.", problems=problems)
    return InstrumentDefinition(
        code=str(code),
        version=int(version),  # type: ignore[arg-type]
        language=str(language),
        rater=str(rater),
        name=name,
        instructions=instructions,
        source=source,
        scale_min=int(scale_min),  # type: ignore[arg-type]
        scale_max=int(scale_max),  # type: ignore[arg-type]
        scale_labels=labels,
        subscales=tuple(subscales),
        subscale_names=subscale_names,
        items=tuple(sorted(items, key=lambda i: i.number)),
        kind=str(kind),
        scoring=scoring,
    )


def _scoring(raw: Any, n_items: int, scale: Any, problems: list[str]) -> dict[str, Any]:
    """An outcome measure's scoring block, normalised; problems added in the file's own terms."""
    if not isinstance(raw, dict):
        problems.append("An outcome measure needs a 'scoring' object (bands, cutoff, reliable_change, ...).")
        return {}
    item_max = scale.get("max") if isinstance(scale, dict) else None
    max_score = n_items * item_max if isinstance(item_max, int) and _is_int(item_max) else None
    out: dict[str, Any] = {"higher_is_worse": raw.get("higher_is_worse", True)}
    if not isinstance(out["higher_is_worse"], bool):
        problems.append("Scoring 'higher_is_worse' must be true or false.")
    max_missing = raw.get("max_missing", 0)
    if not _is_int(max_missing) or not 0 <= max_missing < max(n_items, 1):
        problems.append("Scoring 'max_missing' must be a whole number of items, fewer than the items.")
    out["max_missing"] = max_missing
    out["missing_rule"] = str(raw.get("missing_rule", ""))
    bands = raw.get("bands")
    if not isinstance(bands, list) or not bands:
        problems.append(
            'Scoring \'bands\' must list the severity bands: [{"from": 0, "label": "minimal"}, ...].'
        )
        bands = []
    starts = [b.get("from") for b in bands if isinstance(b, dict)]
    labels = [b.get("label") for b in bands if isinstance(b, dict)]
    if bands and (
        len(starts) != len(bands)
        or not all(_is_int(x) for x in starts)
        or starts != sorted({x for x in starts if isinstance(x, int)})
        or starts[0] != 0
        or not all(isinstance(x, str) and x.strip() for x in labels)
    ):
        problems.append("Scoring 'bands' must start at 0, rise, and each have a 'label'.")
    out["bands"] = [[b, str(label).strip()] for b, label in zip(starts, labels, strict=False)]
    for key in ("cutoff", "reliable_change"):
        value = raw.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            problems.append(f"Scoring '{key}' must be a positive number of points.")
        elif max_score is not None and value > max_score:
            problems.append(f"Scoring '{key}' ({value}) is above the highest possible score ({max_score}).")
        out[key] = value
    for key in ("reliability", "sd"):
        value = raw.get(key)
        if value is not None and (
            not isinstance(value, int | float) or isinstance(value, bool) or value <= 0
        ):
            problems.append(f"Scoring '{key}' must be a positive number (or left out).")
        out[key] = value
    if (
        out["reliability"] is not None
        and isinstance(out["reliability"], int | float)
        and out["reliability"] >= 1
    ):
        problems.append("Scoring 'reliability' must be below 1.")
    risk = raw.get("risk_items", [])
    if not isinstance(risk, list) or not all(_is_int(x) and 1 <= x <= n_items for x in risk):
        problems.append(f"Scoring 'risk_items' must list item numbers from 1 to {n_items}.")
        risk = []
    out["risk_items"] = risk
    loinc = raw.get("loinc", {})
    if not isinstance(loinc, dict) or not all(isinstance(v, str) for v in loinc.values()):
        problems.append("Scoring 'loinc' must map 'panel' and 'total' to LOINC codes.")
        loinc = {}
    out["loinc"] = {k: loinc[k] for k in ("panel", "total") if k in loinc}
    codes = scale.get("codes") if isinstance(scale, dict) else None
    if codes is not None and (not isinstance(codes, list) or not all(isinstance(x, str) for x in codes)):
        problems.append("Scale 'codes' must be a list of answer codes (LOINC LA codes), one per value.")
        codes = None
    out["answer_codes"] = codes or []
    return out


def read_definition(path: Path) -> InstrumentDefinition:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ApplicationError(f"No such file: {path}.") from exc
    except json.JSONDecodeError as exc:
        raise ApplicationError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ) from exc
    return parse_definition(data)


def bundled_definitions() -> list[Path]:
    """The definition files shipped with Bordin (loaded by migrate's post-migrate step and seed_demo)."""
    return sorted(Path(__file__).parent.glob("*.json"))
