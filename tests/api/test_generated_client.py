"""A client generated from the schema by openapi-python-client, as a hospital integrator would make
one, used against a live server (pytest-django's live_server, real HTTP): list patients, read a
session's answers, push a session and enter its form, acknowledge a flag, export and download.

The client is generated once per test run into a temporary folder, from the schema the server
serves (no network: the generator reads the file). Each call goes through the generated code
only, its models parsing the answers, so a schema that generated clients cannot use fails here.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.test import Client

from tests.api.conftest import World, make_token

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]  # about 25 s

PACKAGE = "bordin_generated_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModuleType]]:
    folder = tmp_path_factory.mktemp("client")
    schema = Client(HTTP_HOST="127.0.0.1").get("/api/schema/", {"format": "json"})
    (folder / "schema.json").write_bytes(schema.content)
    (folder / "config.yaml").write_text("post_hooks: []\n")  # no ruff run on the generated code
    generator = Path(sys.executable).with_name("openapi-python-client")
    subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            str(folder / "schema.json"),
            "--meta",
            "none",
            "--output-path",
            str(folder / PACKAGE),
            "--config",
            str(folder / "config.yaml"),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    sys.path.insert(0, str(folder))
    names = [
        "client",
        "types",
        "models",
        "api.patients.patients_list",
        "api.responses.responses_retrieve",
        "api.responses.responses_create",
        "api.sessions.sessions_create",
        "api.flags.flags_acknowledge",
        "api.exports.exports_create",
        "api.exports.exports_retrieve",
        "api.exports.exports_download",
    ]
    try:
        yield {name.rsplit(".", 1)[-1]: importlib.import_module(f"{PACKAGE}.{name}") for name in names}
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def test_a_generated_client_lists_reads_creates_acknowledges_and_downloads(
    generated: dict[str, Any], live_server, world: World, dana, clinic_a
):
    g = generated
    m = g["models"]
    api = g["client"].AuthenticatedClient(
        base_url=live_server.url, token=make_token(dana, clinic_a), timeout=30
    )

    patients = g["patients_list"].sync(client=api)
    assert isinstance(patients, m.PaginatedPatientOutputList), patients
    assert [p.label for p in patients.results] == ["P.A.", "Q.A."]
    assert patients.results[0].external_id == "EXT-1"

    answers = g["responses_retrieve"].sync(
        str(world.answered.code), m.ResponsesRetrieveRater.PATIENT, client=api
    )
    assert isinstance(answers, m.ResponseDetailOutput), answers
    assert sorted((a.item, a.value) for a in answers.answers) == [(n, 5) for n in range(1, 13)]

    session = g["sessions_create"].sync(
        world.patient.code,
        client=api,
        body=m.SessionCreateInputRequest(date=date(2026, 10, 6), status=m.SessionStatusEnum.HELD),
    )
    assert isinstance(session, m.SessionOutput), session
    assert session.number == 4 and session.form_link.url.startswith("http")
    entered = g["responses_create"].sync(
        str(session.code),
        client=api,
        body=m.ResponseInputRequest(answers=[m.AnswerInputRequest(item=n, value=4) for n in range(1, 13)]),
    )
    assert isinstance(entered, m.ResponseDetailOutput), entered
    assert entered.source == m.SourceEnum.STAFF and entered.entered_by == "dana@a.test"

    acknowledged = g["flags_acknowledge"].sync(
        world.flag.code,
        client=api,
        body=m.FlagAcknowledgeInputRequest(acknowledgement=m.AcknowledgementEnum.DISCUSSED, note="Talked."),
    )
    assert isinstance(acknowledged, m.FlagAcknowledgedOutput), acknowledged
    again = g["flags_acknowledge"].sync(
        world.flag.code,
        client=api,
        body=m.FlagAcknowledgeInputRequest(acknowledgement=m.AcknowledgementEnum.DISCUSSED),
    )
    assert isinstance(again, m.Error) and again.error.code == "acknowledged"

    job = finished(g, api, m.ExportInputRequest(report=m.ReportEnum.SESSION_SCORES, format_=m.FormatEnum.CSV))
    download = g["exports_download"].sync_detailed(job.code, client=api)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")  # the real type on the wire
    file = download.parsed
    assert isinstance(file, g["types"].File), file
    rows = list(csv.DictReader(io.StringIO(file.payload.read().decode("utf-8-sig"))))
    assert {r["session"] for r in rows} >= {"1", "4"}, rows[:3]

    # An XLSX (a zip: bytes that are no text), a PDF and a FHIR bundle through the same operation.
    for report, fmt, check in (
        (m.ReportEnum.SESSION_SCORES, m.FormatEnum.XLSX, lambda body: body[:2] == b"PK"),
        (m.ReportEnum.FLAGS, m.FormatEnum.PDF, lambda body: body[:5] == b"%PDF-"),
        (
            m.ReportEnum.ITEM_ANSWERS,
            m.FormatEnum.FHIR,
            lambda body: json.loads(body)["resourceType"] == "Bundle",
        ),
    ):
        job = finished(g, api, m.ExportInputRequest(report=report, format_=fmt))
        file = g["exports_download"].sync(job.code, client=api)
        assert isinstance(file, g["types"].File) and check(file.payload.read()), fmt


def finished(g: dict[str, Any], api: Any, body: Any) -> Any:
    """Start an export and wait for it to finish."""
    m = g["models"]
    job = g["exports_create"].sync(client=api, body=body)
    assert isinstance(job, m.ExportJobOutput), job
    for _ in range(100):
        job = g["exports_retrieve"].sync(job.code, client=api)
        if job.status in (m.ExportStatusEnum.DONE, m.ExportStatusEnum.FAILED):
            break
        time.sleep(0.1)
    assert job.status == m.ExportStatusEnum.DONE, job
    return job
