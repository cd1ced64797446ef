"""Exports: one exporter object per report, serving the admin page, the API and the command line.

As in pretix, a report is an object in the registry ``EXPORTS`` with an ``identifier``, a
``verbose_name``, a ``description``, the ``formats`` it supports and a ``frame(clinic=...,
filters=...)`` method that returns the report as a DataFrame (``item_answers``, which can hold
millions of rows, returns an iterator of DataFrame chunks instead). One renderer, :func:`render`,
turns any exporter's frame into CSV, XLSX, PDF or a FHIR R4 bundle, so a format is written once
and every report gets it. The admin page, the API, background jobs and ``manage.py export_report``
all go through ``monitoring.exports.services``, which checks access and writes the audit entry.

Where things are (this package's root only re-exports them, for callers):

- ``base``: the formats, ``ExportFilters``, ``pseudonym`` and the ``Exporter`` base class, whose
  attributes tell the renderer what differs between reports;
- ``guard``: the formula-injection guard; ``queries``: the queries the reports share;
  ``tables``: frames as text for the PDF templates;
- ``reports/``: one module per report (``session_scores``, ``item_answers``, ``patient_levels``,
  ``flags``, ``clinic_summary``, ``patient_report``); ``registry``: ``EXPORTS`` and ``exporter_get``;
- ``renderer``: ``render`` and the CSV and XLSX writers, with ``pdf`` and ``fhir`` for the
  other two formats;
- ``services``, ``jobs``, ``worker``: access checks, the audit entry and background jobs.

Imports point one way: ``base`` <- ``queries`` <- ``reports`` <- ``registry``, and ``base`` <-
``pdf``, ``fhir`` <- ``renderer`` (the reports draw their PDF charts with ``pdf``). The modules
this root imports import each other by name and never the root, so there is no cycle, not even
inside a function; ``services``, ``jobs`` and ``worker`` may import from the root, which imports
none of them.

Three rules hold for every report (docs/exports.md has the details):

- **Clinic scope.** Every query starts from the clinic; nothing from another clinic can appear.
- **Formula injection.** Text cells of CSV and XLSX files that start with ``= + - @``, a tab or a
  carriage return get a leading apostrophe (OWASP "CSV injection"); numbers stay numbers.
- **Pseudonymisation.** With ``filters.pseudonymise`` patients (and therapists) are replaced by a
  keyed hash, stable across exports of the same clinic, and labels, external ids, names and
  free-text notes are left out. Dates are kept: see docs/exports.md for why, and what that means.

Analysis-based reports (``session_scores``, ``patient_levels``, ``clinic_summary``,
``patient_report``) analyse each episode's patient ratings *up to the end of the period*, with
the clinic's stored reference values, and then keep the rows of the period. Nothing after the
period's end influences a figure, and the flag rules are prospective, so a report for a past
period shows what the analysis said then.
"""

from __future__ import annotations

from monitoring.exports import fhir, pdf
from monitoring.exports.base import (
    CONTENT_TYPES,
    CSV,
    DECIMALS,
    EXTENSIONS,
    FHIR,
    FHIR_BUNDLES,
    FORMAT_NAMES,
    FORMATS,
    IDENTIFYING,
    MIN_STUDY_KEY,
    PDF,
    XLSX,
    Exporter,
    ExportFilters,
    FrameOrChunks,
    ProgressCallback,
    pseudonym,
)
from monitoring.exports.guard import FORMULA_PREFIXES, guard_cell, guard_frame
from monitoring.exports.queries import PeriodAnalysis, analysis_for_export, episode_info, episodes_for_export
from monitoring.exports.registry import EXPORTS, exporter_get
from monitoring.exports.renderer import XLSX_MAX_ROWS, Rendered, csv_stream, render, xlsx_stream
from monitoring.exports.reports.clinic_summary import ClinicSummary, completion_figures, period_summary
from monitoring.exports.reports.flags import Flags
from monitoring.exports.reports.item_answers import CHUNK_ROWS, ItemAnswers
from monitoring.exports.reports.patient_levels import PatientLevels
from monitoring.exports.reports.patient_report import PatientReport
from monitoring.exports.reports.session_scores import SessionScores
from monitoring.exports.tables import Table

__all__ = [
    "CHUNK_ROWS",
    "CONTENT_TYPES",
    "CSV",
    "DECIMALS",
    "EXPORTS",
    "EXTENSIONS",
    "FHIR",
    "FHIR_BUNDLES",
    "FORMATS",
    "FORMAT_NAMES",
    "FORMULA_PREFIXES",
    "IDENTIFYING",
    "MIN_STUDY_KEY",
    "PDF",
    "XLSX",
    "XLSX_MAX_ROWS",
    "ClinicSummary",
    "ExportFilters",
    "Exporter",
    "Flags",
    "FrameOrChunks",
    "ItemAnswers",
    "PatientLevels",
    "PatientReport",
    "PeriodAnalysis",
    "ProgressCallback",
    "Rendered",
    "SessionScores",
    "Table",
    "analysis_for_export",
    "completion_figures",
    "csv_stream",
    "episode_info",
    "episodes_for_export",
    "exporter_get",
    "fhir",
    "guard_cell",
    "guard_frame",
    "pdf",
    "period_summary",
    "pseudonym",
    "render",
    "xlsx_stream",
]

#: Limits re-exported here, by the module that reads them.
