"""Finding 4 of issue 14: an import filed one patient's answers under another.

``X.Y,,1,...`` and ``Z.Z,X.Y,2,...`` imported "2 responses, 1 new patient": the label X.Y of the
first row and the external id X.Y of the second were the same dictionary key, so Z.Z's answers
became session 2 of X.Y and Z.Z was never created. Patients are identified by external id when
one is given, else by label; the two kinds of key are now kept apart, and a file in which one text
names one patient by label and another by external id (or one external id carries two labels, or
one label two external ids) is refused with the line and column, nothing stored. Refused rather
than imported as two patients: such a file is almost always a shifted column or a copy-paste
slip, a misfiled answer puts one patient's flags on another's page, and a clinic whose patient
"X.Y" and whose record number "X.Y" belong to different people finds the wrong one by search.
"""

from __future__ import annotations

import io

import pytest

from clinics.errors import ApplicationError
from clinics.models import Episode, Patient, Session
from monitoring.collection.importing import responses_import
from monitoring.models import Response

pytestmark = pytest.mark.django_db

HEADER = "patient,external_id,session,date," + ",".join(f"item_{n}" for n in range(1, 13))
LONG_HEADER = "patient,external_id,session,date,item,value"
FOURS = ",".join(["4"] * 12)


def wide(*rows: str) -> io.StringIO:
    return io.StringIO("\n".join([HEADER, *rows]) + "\n")


def counts() -> tuple[int, int, int, int]:
    return Patient.objects.count(), Episode.objects.count(), Session.objects.count(), Response.objects.count()


def refused(clinic, therapist, file: io.StringIO) -> list[str]:
    before = counts()
    with pytest.raises(ApplicationError) as caught:
        responses_import(clinic=clinic, therapist=therapist, file=file)
    assert counts() == before, "a refused import stored something"
    return caught.value.problems


def test_the_probe_a_label_equal_to_another_rows_external_id_is_refused(clinic_a, alice):
    problems = refused(clinic_a, alice, wide(f"X.Y,,1,2026-09-01,{FOURS}", f"Z.Z,X.Y,2,2026-09-08,{FOURS}"))
    assert problems == [
        "Line 3, column external_id: external id 'X.Y' is the label of another patient on line 2; "
        "one text names one patient, as a label or as an external id."
    ]


def test_the_same_collision_the_other_way_round_is_refused(clinic_a, alice):
    problems = refused(clinic_a, alice, wide(f"Z.Z,X.Y,1,2026-09-01,{FOURS}", f"X.Y,,2,2026-09-08,{FOURS}"))
    assert problems == [
        "Line 3, column patient: label 'X.Y' is the external id of another patient on line 2; "
        "one text names one patient, as a label or as an external id."
    ]


def test_a_label_equal_to_another_patients_external_id_is_refused_with_both_ids(clinic_a, alice):
    problems = refused(
        clinic_a, alice, wide(f"X.Y,E-2,1,2026-09-01,{FOURS}", f"Z.Z,X.Y,1,2026-09-01,{FOURS}")
    )
    assert problems == [
        "Line 3, column external_id: external id 'X.Y' is the label of another patient on line 2; "
        "one text names one patient, as a label or as an external id."
    ]


def test_one_external_id_with_two_labels_is_refused(clinic_a, alice):
    problems = refused(
        clinic_a, alice, wide(f"A.A,E-1,1,2026-09-01,{FOURS}", f"B.B,E-1,2,2026-09-08,{FOURS}")
    )
    assert problems == [
        "Line 3, column patient: external id 'E-1' has label 'A.A' on line 2 and 'B.B' here; "
        "every row of a patient needs the same label and external id."
    ]


def test_one_external_id_with_a_label_and_without_one_is_refused(clinic_a, alice):
    problems = refused(clinic_a, alice, wide(f"A.A,E-1,1,2026-09-01,{FOURS}", f",E-1,2,2026-09-08,{FOURS}"))
    assert problems == [
        "Line 3, column patient: external id 'E-1' has label 'A.A' on line 2 and no label here; "
        "every row of a patient needs the same label and external id."
    ]


def test_one_external_id_with_two_labels_in_one_session_of_a_long_file_is_refused(clinic_a, alice):
    rows = [f"A.A,E-1,1,2026-09-01,{item},4" for item in range(1, 7)]
    rows += [f"B.B,E-1,1,2026-09-01,{item},4" for item in range(7, 13)]
    problems = refused(clinic_a, alice, io.StringIO("\n".join([LONG_HEADER, *rows]) + "\n"))
    assert problems[0] == (
        "Line 8, column patient: external id 'E-1' has label 'A.A' on line 2 and 'B.B' here; "
        "every row of a patient needs the same label and external id."
    )


@pytest.mark.parametrize(
    ("second", "here"),
    [
        (f"M.K.,,2,2026-09-08,{FOURS}", "no external id"),
        (f"M.K.,HR-2,2,2026-09-08,{FOURS}", "external id 'HR-2'"),
    ],
)
def test_one_label_with_two_identities_is_refused(clinic_a, alice, second, here):
    problems = refused(clinic_a, alice, wide(f"M.K.,HR-1,1,2026-09-01,{FOURS}", second))
    assert problems == [
        f"Line 3, column patient: label 'M.K.' has external id 'HR-1' on line 2 and {here} here; "
        "every row of a patient needs the same label and external id."
    ]


def test_an_external_id_equal_to_the_label_of_a_patient_of_the_clinic_is_refused(clinic_a, alice):
    Patient.objects.create(clinic=clinic_a, label="X.Y", therapist=alice)
    problems = refused(clinic_a, alice, wide(f"Z.Z,X.Y,1,2026-09-01,{FOURS}"))
    assert problems == [
        "Line 2, column external_id: external id 'X.Y' is the label of a patient of the clinic "
        "who has no external id; to add these answers to that patient, leave external_id empty and "
        "put X.Y in the patient column, or give the patient this external id first."
    ]


def test_an_external_id_equal_to_the_label_of_a_patient_with_another_external_id_is_refused(clinic_a, alice):
    Patient.objects.create(clinic=clinic_a, label="X.Y", external_id="HR-1", therapist=alice)
    problems = refused(clinic_a, alice, wide(f"Z.Z,X.Y,1,2026-09-01,{FOURS}"))
    assert problems == [
        "Line 2, column external_id: external id 'X.Y' is the label of a patient of the clinic who has "
        "external id 'HR-1'; one text names one patient, as a label or as an external id."
    ]


def test_a_label_equal_to_the_external_id_of_a_patient_of_the_clinic_is_refused(clinic_a, alice):
    Patient.objects.create(clinic=clinic_a, label="Z.Z", external_id="X.Y", therapist=alice)
    problems = refused(clinic_a, alice, wide(f"X.Y,,1,2026-09-01,{FOURS}"))
    assert problems == [
        "Line 2, column patient: label 'X.Y' is the external id of patient Z.Z of the clinic; to add "
        "these answers to that patient, put X.Y in the external_id column."
    ]


def test_a_row_whose_label_belongs_to_another_patient_than_its_external_id_is_refused(clinic_a, alice):
    Patient.objects.create(clinic=clinic_a, label="M.K.", external_id="HR-1", therapist=alice)
    Patient.objects.create(clinic=clinic_a, label="J.S.", external_id="HR-2", therapist=alice)
    problems = refused(clinic_a, alice, wide(f"J.S.,HR-1,1,2026-09-01,{FOURS}"))
    assert problems == [
        "Line 2, column patient: label 'J.S.' belongs to another patient of the clinic than external "
        "id 'HR-1' (M.K.)."
    ]


def test_a_file_that_names_each_patient_one_way_imports_two_patients(clinic_a, alice):
    """The probe's file with Z.Z given an external id of its own: two patients, each with its answers."""
    result = responses_import(
        clinic=clinic_a,
        therapist=alice,
        file=wide(f"X.Y,,1,2026-09-01,{FOURS}", f"Z.Z,HR-7,2,2026-09-08,{FOURS}"),
    )
    assert (result.patients_created, result.responses_created) == (2, 2)
    assert sorted(Response.objects.values_list("session__episode__patient__label", "session__number")) == [
        ("X.Y", 1),
        ("Z.Z", 2),
    ]
    assert Patient.objects.get(label="Z.Z").external_id == "HR-7"


def test_a_label_equal_to_its_own_external_id_is_one_patient(clinic_a, alice):
    """Not a collision: a row without a label is labelled with its external id."""
    result = responses_import(
        clinic=clinic_a,
        therapist=alice,
        file=wide(f"E-9,E-9,1,2026-09-01,{FOURS}", f",E-9,2,2026-09-08,{FOURS}"),
    )
    assert (result.patients_created, result.responses_created) == (1, 2)
    patient = Patient.objects.get()
    assert (patient.label, patient.external_id) == ("E-9", "E-9")
    # And the same patient again later, by external id and by its label: still one patient.
    responses_import(clinic=clinic_a, therapist=alice, file=wide(f",E-9,3,2026-09-15,{FOURS}"))
    responses_import(clinic=clinic_a, therapist=alice, file=wide(f"E-9,,4,2026-09-22,{FOURS}"))
    assert Patient.objects.count() == 1 and Session.objects.count() == 4
