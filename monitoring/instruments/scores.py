"""Scale scores of stored answers, each response scored with its own instrument version's
structure (methods.md section 1): the input of every analysis."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from django.db import connections
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from monitoring.analytics.scoring import score_items
from monitoring.models import (
    Answer,
    Instrument,
    InstrumentItem,
    Response,
)


def scores_for_episodes(*, episode_ids: Iterable[int], rater: str = "patient") -> pd.DataFrame:
    """Scale scores, one row per response: ``patient`` (the episode id), ``session`` (number),
    ``goal``, ``task``, ``bond``, ``total``; the input of ``monitoring.analytics.analyse``.

    Each response is scored with its own instrument version's structure (methods section 1).
    One flat query of answers joined to their response and session, built straight into arrays:
    on a caseload this is the largest read of the page. One query is one snapshot: two (responses,
    then answers) tore when a response committed between them, leaving answers without an
    instrument (issue 14, tests/attacks/test_torn_reads.py).
    """
    columns = ["patient", "session", "goal", "task", "bond", "total"]
    ids = list(episode_ids)
    if not ids:  # no query: Django cannot write SQL for an empty IN (EmptyResultSet)
        return pd.DataFrame(columns=columns).astype({"patient": "int64", "session": "int64"})
    # item_id, not item__number: the join to the items table doubled the cost of this query; and
    # the rows go straight from the cursor into one integer array, skipping the ORM's per-row work
    # (half the time of a caseload's largest read).
    answers = Answer.objects.filter(
        response__session__episode_id__in=ids, response__rater=rater, response__measure="alliance"
    ).values_list(
        "response_id",
        "response__session__episode_id",
        "response__session__number",
        "response__instrument_id",
        "item_id",
        "value",
    )
    sql, params = answers.query.sql_with_params()
    with connections[answers.db].cursor() as cursor:
        cursor.execute(sql, params)
        flat = np.array(cursor.fetchall(), dtype=np.int64).reshape(-1, 6)
    if not len(flat):
        return pd.DataFrame(columns=columns).astype({"patient": "int64", "session": "int64"})
    response_ids, answer_instrument, item_ids, values = flat[:, 0], flat[:, 3], flat[:, 4], flat[:, 5]
    _, first = np.unique(response_ids, return_index=True)
    keys = pd.DataFrame(flat[first, :4], columns=["response", "patient", "session", "instrument"])
    number_of = dict(
        InstrumentItem.objects.filter(instrument_id__in=keys["instrument"].unique().tolist()).values_list(
            "pk", "number"
        )
    )
    item_numbers = pd.Series(item_ids).map(number_of).to_numpy()
    frames = []
    for instrument_id in pd.unique(answer_instrument):
        mask = answer_instrument == instrument_id
        group = pd.DataFrame(
            {"response": response_ids[mask], "item": item_numbers[mask], "value": values[mask]}
        )
        frames.append(score_items(group, **_instrument_structure(int(instrument_id))))
    scored = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    merged = keys.merge(scored, on="response", how="inner")
    return merged[columns].sort_values(["patient", "session"], ignore_index=True)


def _instrument_structure(instrument_id: int) -> dict[str, Any]:
    instrument = Instrument.objects.prefetch_related("items").get(pk=instrument_id)
    subscales: dict[str, list[int]] = {}
    for item in instrument.items.all():
        subscales.setdefault(item.subscale, []).append(item.number)
    return {
        "subscales": subscales,
        "reverse_keyed": {i.number for i in instrument.items.all() if i.reverse_keyed},
        "scale_min": instrument.scale_min,
        "scale_max": instrument.scale_max,
    }


def response_scores(*, response: Response) -> list[dict[str, Any]]:
    """One response's subscale and total scores, for the patient's own thank-you page."""
    answers = pd.DataFrame.from_records(
        list(response.answers.values_list("response_id", "item__number", "value")),
        columns=["response", "item", "value"],
    )
    scored = score_items(answers, **_instrument_structure(response.instrument_id)).iloc[0]
    wording = response.instrument.translation(get_language() or "en")
    names = {**wording.subscale_names, "total": _("Overall")}
    return [
        {"scale": scale, "name": names.get(scale, scale), "score": round(float(scored[scale]), 1)}
        for scale in [*response.instrument.subscales, "total"]
        if not pd.isna(scored[scale])
    ]
