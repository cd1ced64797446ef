from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from clinics.errors import ApplicationError
from monitoring.collection.responses import response_create
from monitoring.instruments.definition import bundled_definitions, parse_definition
from monitoring.instruments.services import instrument_load
from monitoring.models import Answer, Instrument, InstrumentTranslation

EN = json.loads((Path(bundled_definitions()[0]).parent / "bordin-alliance.v1.en.json").read_text())


def test_the_default_instrument_has_the_wai_sr_structure():
    definition = parse_definition(EN)
    by_subscale: dict[str, list[int]] = {}
    for item in definition.items:
        by_subscale.setdefault(item.subscale, []).append(item.number)
    assert by_subscale == {"task": [1, 2, 10, 12], "bond": [3, 5, 7, 9], "goal": [4, 6, 8, 11]}
    assert (definition.scale_min, definition.scale_max) == (1, 5)
    assert definition.scale_labels == ("Seldom", "Sometimes", "Fairly often", "Very often", "Always")
    assert not any(item.reverse_keyed for item in definition.items)


@pytest.mark.parametrize("path", bundled_definitions(), ids=lambda p: p.name)
def test_every_bundled_definition_is_valid(path):
    parse_definition(json.loads(path.read_text()))


def broken(change) -> dict:
    data = copy.deepcopy(EN)
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("code"), "'code' must be lower-case letters, digits and hyphens"),
        (lambda d: d.update(version=0), "'version' must be a whole number of 1 or more."),
        (lambda d: d.update(language="English"), "'language' must be a language code"),
        (lambda d: d.update(rater="family"), "'rater' must be one of patient, therapist."),
        (lambda d: d["scale"].update(min=5, max=1), "Scale 'min' (5) must be below 'max' (1)."),
        (lambda d: d["scale"].update(max=7), "Scale 1-7 is not supported"),
        (lambda d: d["scale"]["labels"].pop(), "Scale has 5 values but 4 labels"),
        (lambda d: d["subscales"].pop(), "missing: bond."),
        (lambda d: d["subscales"].append({"code": "goal"}), "Subscale 'goal' is listed twice."),
        (
            lambda d: d["items"][0].update(subscale="hope"),
            "Item 1: subscale 'hope' is not one of the listed subscales.",
        ),
        (lambda d: d["items"][1].update(number=1), "Item 1: the number 1 is used twice"),
        (lambda d: d["items"][11].update(number=14), "Item numbers must run 1 to 12 without gaps"),
        (
            lambda d: d["items"][2].update(keying="sideways"),
            "Item 3: 'keying' must be 'positive' or 'reverse'",
        ),
        (lambda d: d["items"][4].update(text=" "), "Item 5: 'text' must be the item's wording."),
        (
            lambda d: d.update(items=[i for i in d["items"] if i["subscale"] != "goal"]),
            "Subscale 'goal' has no items.",
        ),
    ],
)
def test_each_kind_of_bad_definition_gets_its_own_message(change, message):
    with pytest.raises(ApplicationError) as caught:
        parse_definition(broken(change))
    assert any(message in problem for problem in caught.value.problems), caught.value.problems


def test_it_reports_every_problem_at_once():
    with pytest.raises(ApplicationError) as caught:
        parse_definition(broken(lambda d: (d.update(version=-1), d["items"][0].update(text=""))))
    assert len(caught.value.problems) == 2


@pytest.mark.django_db
def test_migrate_loads_the_bundled_instruments_in_both_languages():
    patient_form = Instrument.objects.get(code="bordin-alliance", version=1)
    assert patient_form.items.count() == 12
    assert set(patient_form.translations.values_list("language", flat=True)) == {"en", "de"}
    assert patient_form.translation("de-AT").scale_labels[0] == "Selten"
    assert patient_form.translation("fr").language == "en"
    assert Instrument.objects.get(code="bordin-alliance-therapist").rater == "therapist"


@pytest.mark.django_db
def test_loading_a_new_version_leaves_stored_answers_alone(session, instrument):
    response_create(
        session=session, instrument=instrument, answers={n: 3 for n in range(1, 13)}, source="staff"
    )
    before = list(
        Answer.objects.values_list("item__instrument__version", "item__number", "item__subscale", "value")
    )
    v2 = broken(
        lambda d: (
            d.update(version=2),
            d["items"][0].update(subscale="goal"),
            d["items"][3].update(subscale="task"),
        )
    )
    new, action = instrument_load(definition=parse_definition(v2))
    assert (new.version, action) == (2, "created")
    after = list(
        Answer.objects.values_list("item__instrument__version", "item__number", "item__subscale", "value")
    )
    assert after == before


@pytest.mark.django_db
def test_reloading_a_version_with_another_structure_is_refused():
    changed = broken(lambda d: d["items"][0].update(subscale="bond"))
    with pytest.raises(ApplicationError, match="already loaded with a different structure"):
        instrument_load(definition=parse_definition(changed))


@pytest.mark.django_db
def test_a_translation_is_added_to_the_same_version():
    spanish = broken(lambda d: d.update(language="es", name="¿Cómo fue la sesión de hoy?"))
    instrument, action = instrument_load(definition=parse_definition(spanish))
    assert action == "translated"
    assert InstrumentTranslation.objects.get(instrument=instrument, language="es").name.startswith("¿Cómo")


@pytest.mark.django_db
def test_the_command_loads_a_file_and_refuses_a_bad_one(tmp_path, capsys):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(broken(lambda d: d.update(code="clinic-form"))))
    call_command("load_instrument", str(good))
    assert "clinic-form v1 created" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CommandError, match="is not valid JSON"):
        call_command("load_instrument", str(bad))
    assert not Instrument.objects.filter(code="").exists()


PHQ9 = json.loads((Path(bundled_definitions()[0]).parent / "phq9.v1.en.json").read_text())


def broken_measure(change) -> dict:
    data = copy.deepcopy(PHQ9)
    change(data)
    return data


def test_an_outcome_measure_carries_its_scoring_as_data():
    definition = parse_definition(PHQ9)
    assert definition.kind == "outcome" and (definition.scale_min, definition.scale_max) == (0, 3)
    assert definition.scoring["cutoff"] == 10 and definition.scoring["reliable_change"] == 6
    assert definition.scoring["risk_items"] == [9] and definition.scoring["loinc"]["total"] == "44261-6"
    assert definition.items[0].code == "44250-9"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(kind="mood"), "'kind' must be one of alliance, outcome"),
        (lambda d: d.pop("scoring"), "An outcome measure needs a 'scoring' object"),
        (lambda d: d["scale"].update(max=11, labels=["x"] * 12), "not supported for an outcome measure"),
        (lambda d: d["scoring"]["bands"].reverse(), "Scoring 'bands' must start at 0, rise"),
        (
            lambda d: d["scoring"].update(cutoff=40),
            "Scoring 'cutoff' (40) is above the highest possible score (27)",
        ),
        (
            lambda d: d["scoring"].update(reliable_change=0),
            "Scoring 'reliable_change' must be a positive number",
        ),
        (lambda d: d["scoring"].update(reliability=1.2), "Scoring 'reliability' must be below 1."),
        (
            lambda d: d["scoring"].update(risk_items=[10]),
            "Scoring 'risk_items' must list item numbers from 1 to 9.",
        ),
        (
            lambda d: d["scoring"].update(max_missing=9),
            "Scoring 'max_missing' must be a whole number of items",
        ),
        (lambda d: d["items"][0].update(code=44250), "Item 1: 'code' must be a text"),
        (lambda d: d.update(source="x" * 501), "'source' is 501 characters long; at most 500 fit."),
        (lambda d: d.update(name="x" * 201), "'name' is 201 characters long; at most 200 fit."),
    ],
)
def test_each_kind_of_bad_scoring_gets_its_own_message(change, message):
    with pytest.raises(ApplicationError) as caught:
        parse_definition(broken_measure(change))
    assert any(message in problem for problem in caught.value.problems), caught.value.problems


@pytest.mark.django_db
def test_a_translation_must_keep_the_scoring():
    changed = broken_measure(lambda d: (d.update(language="de"), d["scoring"].update(cutoff=11)))
    with pytest.raises(ApplicationError, match="different structure"):
        instrument_load(definition=parse_definition(changed))
    same = broken_measure(lambda d: d.update(language="de", name="PHQ-9 (Übersetzung)"))
    _, action = instrument_load(definition=parse_definition(same))
    assert action == "translated"
