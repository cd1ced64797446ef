"""Item answers: every patient-rated answer in the long layout the CSV import reads, streamed.

Also the source of the FHIR bundle (:meth:`ItemAnswers.answers`): the renderer hands its answers to
``monitoring.exports.fhir``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pandas as pd
from django.db.models import QuerySet

import monitoring.exports.columns as cols
from clinics.models import Clinic, Patient
from monitoring.analytics.outcomes import MEASURES
from monitoring.exports.base import CSV, FHIR, XLSX, Exporter, ExportFilters, pseudonym
from monitoring.exports.columns import Column
from monitoring.exports.queries import episodes_for_export, sessions_in_period
from monitoring.models import Answer, Rater

#: Rows per chunk of a streamed export: large enough that per-chunk overhead vanishes, small
#: enough that a chunk is a few megabytes.
CHUNK_ROWS = 20_000


class ItemAnswers(Exporter):
    """Streamed: a clinic's answers are read in chunks straight from a database cursor (a
    server-side cursor on PostgreSQL), so memory stays flat however many there are."""

    identifier = "item_answers"
    verbose_name = "Item answers"
    description = (
        "Every patient-rated answer, one row per item, in exactly the long layout the CSV import "
        "reads (patient, external_id, session, date, measure, item, value; measure is alliance, "
        "phq9 or gad7), so an export can be imported again. Also as a FHIR R4 bundle of QuestionnaireResponses for the health record."
    )
    formats = (CSV, XLSX, FHIR)
    columns = (
        cols.PATIENT,
        cols.EXTERNAL_ID,
        cols.SESSION,
        cols.DATE_,
        Column(
            "measure",
            "The questionnaire answered: the alliance form, or a symptom measure (a measure a "
            "clinic loads adds its code).",
            cols.CODE,
            (
                ("alliance", "the 12 alliance items (goal, task, bond)"),
                *((spec.code, f"{spec.name}, {spec.items} items") for spec in MEASURES.values()),
            ),
        ),
        Column(
            "item", "The item's number within its questionnaire (1 to 12 for the alliance).", "item number"
        ),
        Column(
            "value",
            "The answer as the patient gave it, before any reverse keying: 1-5 for the alliance "
            "(1 seldom ... 5 always), 0-3 for PHQ-9 and GAD-7 (0 not at all ... 3 nearly every day).",
            "answer on the item's scale",
        ),
    )
    streaming = True
    # The import layout is fixed: external_id stays, empty, in a pseudonymised export.
    fixed_layout = True

    def answers(self, *, clinic: Clinic, filters: ExportFilters) -> QuerySet[Answer]:
        episodes = episodes_for_export(clinic=clinic, filters=filters)
        answers = Answer.objects.filter(
            response__rater=Rater.PATIENT, response__session__episode__in=episodes.values("pk")
        )
        return sessions_in_period(answers, filters, prefix="response__session__")

    def count(self, *, clinic: Clinic, filters: ExportFilters) -> int:
        return self.answers(clinic=clinic, filters=filters).count()

    def frame(
        self, *, clinic: Clinic, filters: ExportFilters, chunk_rows: int | None = None
    ) -> Iterator[pd.DataFrame]:
        chunk_rows = chunk_rows or CHUNK_ROWS
        # The people are looked up once per patient (and guarded there, once); the answer rows
        # carry only numbers and dates.
        patients = Patient.objects.filter(clinic=clinic).values_list("pk", "code", "label", "external_id")
        if filters.pseudonymise:
            who = {
                pk: (pseudonym(clinic=clinic, kind="patient", value=code, key=filters.pseudonym_key), "")
                for pk, code, _, _ in patients
            }
        else:
            who = {pk: (label, external_id) for pk, _, label, external_id in patients}
        rows = (
            self.answers(clinic=clinic, filters=filters)
            .order_by(
                "response__session__episode__patient_id",
                "response__session__episode__started_on",
                "response__session__number",
                "response__measure",
                "item__number",
            )
            .values_list(
                "response__session__episode__patient_id",
                "response__session__number",
                "response__session__date",
                "response__measure",
                "item__number",
                "value",
            )
            .iterator(chunk_size=chunk_rows)
        )
        label_of = {pk: names[0] for pk, names in who.items()}
        external_of = {pk: names[1] for pk, names in who.items()}
        while True:
            chunk = list(itertools.islice(rows, chunk_rows))
            if not chunk:
                return
            frame = pd.DataFrame.from_records(
                chunk, columns=["patient_id", "session", "date", "measure", "item", "value"]
            )
            ids = frame.pop("patient_id")
            frame.insert(0, "patient", ids.map(label_of))
            frame.insert(1, "external_id", ids.map(external_of))
            yield frame
