"""Flags: every stored flag with its explanation, the numbers behind it and its acknowledgement."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from django.utils import timezone

from clinics.models import Clinic
from monitoring.exports.base import CSV, PDF, XLSX, Exporter, ExportFilters
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
        "patient",
        "external_id",
        "therapist",
        "treatment",
        "episode_start",
        "session",
        "date",
        "scale",
        "kind",
        "alarm",
        "magnitude",
        "threshold",
        "compared",
        "rule",
        "score",
        "baseline",
        "s_used",
        "explanation",
        "raised_at",
        "acknowledgement",
        "acknowledged_at",
        "acknowledged_by",
        "acknowledged_note",
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
        return join_info(frame, info, self.columns, pseudonymise=filters.pseudonymise)

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
            shown["scale"] = shown["scale"].map(lambda v: str(v).capitalize())
        return {"table": pdf_table(shown.rename(columns=PDF_HEADERS)), "landscape": True}


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
    """Aware datetimes in the clinic's time zone: CSV writes them with their offset (ISO 8601),
    XLSX as the local wall time (spreadsheets have no time zones)."""
    return timezone.localtime(value) if value else None
