"""The registry: every report, by identifier, as in pretix. The admin page, the API, the
background jobs and ``manage.py export_report`` all find their exporter here."""

from __future__ import annotations

from clinics.errors import ApplicationError
from monitoring.exports.base import Exporter
from monitoring.exports.reports.clinic_summary import ClinicSummary
from monitoring.exports.reports.flags import Flags
from monitoring.exports.reports.item_answers import ItemAnswers
from monitoring.exports.reports.patient_levels import PatientLevels
from monitoring.exports.reports.patient_report import PatientReport
from monitoring.exports.reports.session_scores import SessionScores

#: The registry: every report, by identifier.
EXPORTS: dict[str, Exporter] = {
    e.identifier: e
    for e in (SessionScores(), ItemAnswers(), PatientLevels(), Flags(), ClinicSummary(), PatientReport())
}


def exporter_get(identifier: str) -> Exporter:
    try:
        return EXPORTS[identifier]
    except KeyError:
        raise ApplicationError(f"There is no export called '{identifier}'.") from None
