"""docs/data-dictionary.md is generated from the exporters' column declarations and cannot drift:
the committed file is what ``manage.py data_dictionary`` writes, every column any export writes
is in it with a meaning and a unit, and every code the program can store in a coded column is
listed."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from monitoring.analytics import columns as c
from monitoring.exports import EXPORTS
from monitoring.exports.dictionary import data_dictionary
from monitoring.exports.queries import symptom_columns
from monitoring.flags.wording import COMPARED
from monitoring.models import Flag

DICTIONARY = Path(__file__).resolve().parents[2] / "docs" / "data-dictionary.md"


def test_the_committed_dictionary_is_what_the_exporters_say():
    assert DICTIONARY.read_text(encoding="utf-8") == data_dictionary(), (
        "docs/data-dictionary.md is out of date: run `manage.py data_dictionary` and commit it."
    )


def test_the_command_writes_the_file_and_check_fails_on_a_stale_one(tmp_path):
    out = tmp_path / "dictionary.md"
    call_command("data_dictionary", out=str(out), stdout=io.StringIO())
    assert out.read_text(encoding="utf-8") == data_dictionary()
    call_command("data_dictionary", out=str(out), check=True, stdout=io.StringIO())
    out.write_text(out.read_text(encoding="utf-8").replace("| `s_used` |", "| `s` |"), encoding="utf-8")
    with pytest.raises(CommandError, match="out of date"):
        call_command("data_dictionary", out=str(out), check=True, stdout=io.StringIO())


@pytest.mark.django_db
@pytest.mark.parametrize("identifier", sorted(EXPORTS))
def test_every_column_a_report_writes_has_a_meaning_and_a_unit(identifier):
    exporter = EXPORTS[identifier]
    documented = {column.name: column for column in exporter.documented_columns()}
    for pseudonymise in (False, True):
        for name in exporter.output_columns(pseudonymise=pseudonymise):
            assert name in documented, f"{identifier}.{name} is not in the data dictionary"
            assert documented[name].meaning and documented[name].unit
            assert f"| `{name}`" in DICTIONARY.read_text(encoding="utf-8")


@pytest.mark.django_db
def test_the_symptom_columns_of_the_loaded_measures_are_documented():
    documented = {column.name for column in EXPORTS["session_scores"].documented_columns()}
    assert set(symptom_columns()) <= documented


def test_every_code_the_program_stores_is_listed():
    columns = {
        column.name: dict(column.codes) for exporter in EXPORTS.values() for column in exporter.columns
    }
    assert set(columns["kind"]) == set(Flag.Kind.values)
    assert set(columns["acknowledgement"]) == set(Flag.Acknowledgement.values)
    assert set(columns["scale"]) == set(c.SCALES)
    assert set(columns["compared"]) == set(COMPARED.values())
    assert set(columns["rule"]) == set(COMPARED)  # every rule the flags can name
    assert {"cbt", "lower_cusum", "sudden_loss", "corrective_experience"} <= {
        code for codes in columns.values() for code in codes
    }


def test_the_readme_methods_and_api_docs_point_to_the_dictionary():
    root = DICTIONARY.parent.parent
    for doc in ("README.md", "docs/methods.md", "docs/api.md", "docs/exports.md"):
        assert "data-dictionary.md" in (root / doc).read_text(encoding="utf-8"), doc
