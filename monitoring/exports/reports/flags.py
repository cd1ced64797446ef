"""Flags: every stored flag with its explanation, the numbers behind it and its acknowledgement."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from django.utils import timezone

import monitoring.exports.columns as cols
from clinics.models import Clinic
from monitoring.analytics import columns as c
from monitoring.analytics.absolute import RULE_BELOW_CUTOFF
from monitoring.analytics.perspectives import RULE_GAP_ABOVE_USUAL
from monitoring.exports.base import CSV, PDF, XLSX, Exporter, ExportFilters
from monitoring.exports.columns import Column, coded
from monitoring.exports.queries import (
    episode_info,
    episodes_for_export,
    join_info,
    person_name,
    sessions_in_period,
)
from monitoring.exports.tables import pdf_table
from monitoring.flags.wording import COMPARED, FLAGS, threshold_compared
from monitoring.models import Flag

#: What each ``rule`` code means (the codes are the analytics', ``monitoring.analytics.columns``).
RULE_MEANINGS = {
    c.RULE_BASELINE: "rupture, with 3 or more earlier sessions: the score fell to the baseline "
    "minus a multiple of s_used or below (methods.md 4.2)",
    c.RULE_PREVIOUS: "rupture, with 1 or 2 earlier sessions: a large fall from the previous session",
    c.RULE_BACK_IN_RANGE: "repair: the score came back to within s_used of the baseline before the rupture (4.3)",
    c.RULE_WINDOW_ENDED: "unrepaired: the repair window ended with the score still below (4.3)",
    c.RULE_CUSUM: "declining trend: the running sum of sessions below the usual level (lower CUSUM) "
    "crossed its limit (4.4)",
    c.RULE_TANG_DERUBEIS: "sudden gain or loss: the Tang and DeRubeis criteria on one jump between "
    "sessions (4.5)",
    RULE_BELOW_CUTOFF: "alliance stayed low: the total below the clinic's cut-off several sessions in a row (4.10)",
    RULE_GAP_ABOVE_USUAL: "two perspectives: the therapist rated the session above the patient by more than "
    "the pair's usual difference allows (4.9)",
}


def _rules_comparing(words: str) -> str:
    rules = [rule for rule, compared in COMPARED.items() if compared == words]
    return ("rules " if len(rules) > 1 else "rule ") + ", ".join(rules)


class Flags(Exporter):
    identifier = "flags"
    verbose_name = "Flags"
    description = (
        "Every stored flag (rupture, repair, unrepaired rupture, declining trend, sudden gain or "
        "loss, alliance stayed low) with its explanation, the numbers behind it (threshold: the "
        "score the rule compared with, as 'compared' says), and its acknowledgement: who, when "
        "and the note."
    )
    formats = (CSV, XLSX, PDF)
    columns = (
        *cols.WHO,
        cols.SESSION,
        cols.DATE_,
        cols.SCALE,
        Column("kind", "What was found (docs/methods.md section 4).", cols.CODE, coded(Flag.Kind.choices)),
        Column(
            "alarm",
            "true when this flag put the patient on the caseload; one alarm per patient and session "
            "whatever the scales and kinds (methods.md 4.7).",
            cols.BOOLEAN,
        ),
        Column(
            "magnitude",
            "The event's size: a rupture's drop below its baseline (or below the previous session "
            "early on), a repair's rise since the rupture, how far an unrepaired rupture is still "
            "below its baseline, a sudden change's jump, how far a low alliance is below the "
            "cut-off, the therapist's rating above the patient's: in points; a decline's running "
            "sum (CUSUM), in the patient's SDs.",
            "points (a decline: the patient's SDs)",
        ),
        Column(
            "threshold",
            "The score (or, for a decline, the running sum; for a sudden change, the jump) the rule "
            "compared with; compared says how.",
            "as compared says: points on the 1-5 scale, or the patient's SDs for a decline",
        ),
        Column(
            "compared",
            "How the session's number stood against threshold, in words.",
            cols.CODE,
            coded((words, _rules_comparing(words)) for words in dict.fromkeys(COMPARED.values())),
        ),
        Column(
            "rule",
            "Which rule, and which branch of it, raised the flag.",
            cols.CODE,
            coded(RULE_MEANINGS.items()),
        ),
        Column("score", "The session's score on the scale when the flag was raised.", cols.POINTS),
        cols.BASELINE,
        cols.S_USED,
        Column(
            "explanation",
            "The flag in a sentence, as the therapist saw it; made from the numbers, no names.",
        ),
        Column("raised_at", "When the flag was stored.", cols.TIMESTAMP),
        Column(
            "acknowledgement",
            "What the clinician recorded (empty: not acknowledged).",
            cols.CODE,
            coded(Flag.Acknowledgement.choices),
        ),
        Column("acknowledged_at", "When it was acknowledged (empty: not yet).", cols.TIMESTAMP),
        Column(
            "acknowledged_by",
            "Who acknowledged it: name, or e-mail address. Identifying: left out of pseudonymised exports.",
        ),
        Column(
            "acknowledged_note",
            "The clinician's note (free text). Identifying: left out of pseudonymised exports.",
        ),
    )

    def frame(self, *, clinic: Clinic, filters: ExportFilters) -> pd.DataFrame:
        episodes = episodes_for_export(clinic=clinic, filters=filters)
        flags = sessions_in_period(
            Flag.objects.filter(episode__in=episodes.values("pk")),
            filters,
            prefix="session__",
        ).order_by("episode_id", "session__number", "scale", "kind")
        records = []
        for (
            episode_id,
            number,
            day,
            scale,
            kind,
            alarm,
            magnitude,
            threshold,
            detail,
            config,
            explanation,
            created,
            acknowledgement,
            ack_at,
            first,
            last,
            email,
            note,
        ) in flags.values_list(
            "episode_id",
            "session__number",
            "session__date",
            "scale",
            "kind",
            "alarm",
            "magnitude",
            "threshold",
            "detail",
            "config",
            "explanation",
            "created_at",
            "acknowledgement",
            "acknowledged_at",
            "acknowledged_by__first_name",
            "acknowledged_by__last_name",
            "acknowledged_by__email",
            "acknowledged_note",
        ):
            records.append(
                {
                    "episode": episode_id,
                    "session": number,
                    "date": day,
                    "scale": scale,
                    "kind": kind,
                    "alarm": alarm,
                    "magnitude": magnitude,
                    # The score the rule compared with (a rupture's bound, not the drop it allows).
                    "threshold": threshold_compared(
                        rule=str(detail.get("rule") or ""),
                        detail={"repair_tolerance": (config or {}).get("repair_tolerance"), **detail},
                        threshold=threshold,
                        magnitude=magnitude,
                    ),
                    "compared": COMPARED.get(str(detail.get("rule") or ""), ""),
                    "rule": detail.get("rule") or "",
                    "score": detail.get("score"),
                    "baseline": detail.get("baseline"),
                    "s_used": detail.get("s_used"),
                    "explanation": explanation,
                    "raised_at": _local(created),
                    "acknowledgement": acknowledgement,
                    "acknowledged_at": _local(ack_at),
                    "acknowledged_by": person_name(first or "", last or "", email or "") if email else "",
                    "acknowledged_note": note,
                }
            )
        if not records:
            return self.empty(filters=filters)
        frame = pd.DataFrame.from_records(records).astype(
            {"score": float, "baseline": float, "s_used": float}
        )
        info = episode_info(
            clinic=clinic,
            episode_ids=frame["episode"].unique().tolist(),
            pseudonymise=filters.pseudonymise,
            key=filters.pseudonym_key,
        )
        return join_info(frame, info, self.column_names(), pseudonymise=filters.pseudonymise)

    def pdf_context(self, *, clinic: Clinic, filters: ExportFilters, frame: pd.DataFrame) -> dict[str, Any]:
        wanted = [
            n
            for n in (
                "patient",
                "session",
                "date",
                "scale",
                "kind",
                "explanation",
                "acknowledgement",
                "acknowledged_by",
                "acknowledged_note",
            )
            if n in frame.columns
        ]
        shown = frame[wanted].copy()
        # Words, not codes: the PDF is read by people (sudden_loss -> "Sudden loss").
        if "kind" in shown:
            shown["kind"] = shown["kind"].map(lambda k: FLAGS[k].short if k in FLAGS else k)
        if "acknowledgement" in shown:
            labels = dict(Flag.Acknowledgement.choices)
            shown["acknowledgement"] = shown["acknowledgement"].map(lambda a: str(labels.get(a, a or "")))
        if "scale" in shown:
            shown["scale"] = shown["scale"].map(lambda v: c.SCALE_LABELS.get(str(v), str(v)))
        return {"table": pdf_table(shown, headers=PDF_HEADERS), "landscape": True}


#: The PDF's column headers (the files keep the column names of docs/exports.md).
PDF_HEADERS = {
    "patient": "Patient",
    "session": "Session",
    "date": "Date",
    "scale": "Scale",
    "kind": "Flag",
    "explanation": "Explanation",
    "acknowledgement": "Acknowledged",
    "acknowledged_by": "By",
    "acknowledged_note": "Note",
}


def _local(value: datetime | None) -> datetime | None:
    """Aware datetimes in the clinic's time zone: CSV and XLSX write them with their offset
    (ISO 8601)."""
    return timezone.localtime(value) if value else None
