"""Instrument definitions: the JSON format and its validation.

A definition file describes one instrument version in one language::

    {"code": "bordin-alliance", "version": 1, "language": "en", "rater": "patient",
     "name": "...", "instructions": "...", "source": "...",
     "scale": {"min": 1, "max": 5, "labels": ["Seldom", ..., "Always"]},
     "subscales": [{"code": "goal", "name": "Goal agreement"}, ...],
     "items": [{"number": 1, "subscale": "task", "keying": "positive", "text": "..."}, ...]}

``parse_definition`` checks everything and reports every problem at once, each in its own
words, so that whoever prepares a licensed wording or a translation can fix the file in one go.
Pure Python: no Django import.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clinics.errors import ApplicationError

REQUIRED_SUBSCALES = ("goal", "task", "bond")
# The analysis thresholds (SEM, RC, rupture distances) are in points of a 1-5 scale.
SUPPORTED_SCALE = (1, 5)
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

    def structure(self) -> dict[str, Any]:
        """What answers depend on; two languages of one version must agree on it exactly."""
        return {
            "rater": self.rater,
            "scale": [self.scale_min, self.scale_max],
            "subscales": list(self.subscales),
            "items": [[i.number, i.subscale, i.reverse_keyed] for i in self.items],
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
        if missing:
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
            items.append(ItemDefinition(number, str(subscale), keying == "reverse", text.strip()))
        if seen and sorted(seen) != list(range(1, len(seen) + 1)):
            problems.append(f"Item numbers must run 1 to {len(seen)} without gaps; found {sorted(seen)}.")
        for sub in subscales:
            if not any(i.subscale == sub for i in items):
                problems.append(f"Subscale '{sub}' has no items.")

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
    )


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
