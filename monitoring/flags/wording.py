"""Plain clinical words for what the analysis finds: flag names, what they mean, what to try.

The prompts draw on the literature summarised in docs/methods.md (Safran & Muran's rupture and
repair work; Eubanks, Muran & Safran 2018; McLaughlin et al. 2014; Zilcha-Mano & Fisher on
trait-like and state-like alliance). They are prompts for the clinician's judgement, not
instructions. Pure Python (and the pure analytics package, for how a decline was detected).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from monitoring.analytics.config import AnalysisConfig
from monitoring.analytics.explain import (
    DECLINE_CUMULATIVE,
    DECLINE_DROP,
    DECLINE_SLOPE,
    MIN_SLOPE,
    decline_detection,
)

_SLOPE_WINDOW = AnalysisConfig().slope_window

SCALE_NAMES = {
    "total": "Total alliance",
    "goal": "Goal agreement",
    "task": "Task agreement",
    "bond": "Bond",
    "agreement": "Goal and task agreement",
}

#: Order of attention on the caseload (lower first); acknowledged flags do not count.
#: Safety first, then an unrepaired rupture with worsening symptoms, then symptoms not on track,
#: then the alliance flags (issue 15; docs/methods.md section 6.5).
#: A persistently low alliance (an absolute signal, below the clinic's cut-off session after
#: session) ranks with an unrepaired rupture: both say the relationship itself needs talking about.
PRIORITY = {
    "safety": 0,
    "unrepaired_worse": 1,
    "not_on_track": 2,
    "unrepaired": 3,
    "low_alliance": 3,
    "rupture": 4,
    "decline": 5,
    "perspective_gap": 5,
    "sudden_loss": 6,
    "crisis": 7,
    "form_missing": 8,
}
NO_PRIORITY = 9


@dataclass(frozen=True)
class FlagWording:
    title: str
    short: str
    meaning: str
    prompt: str
    tone: str  # alert, warn, ok, info: the badge colour


FLAGS = {
    "unrepaired": FlagWording(
        title="Unrepaired rupture",
        short="Unrepaired rupture",
        meaning=(
            "The alliance dropped clearly below this patient's usual level and has not come back "
            "within the following sessions. Unrepaired ruptures go with poorer outcome and dropout."
        ),
        prompt=(
            "Make the relationship itself the topic: ask directly how therapy feels at the moment, "
            "listen without defending, acknowledge your share, and consider renegotiating the goals "
            "or the way you work together."
        ),
        tone="alert",
    ),
    "rupture": FlagWording(
        title="Rupture",
        short="Rupture",
        meaning=(
            "This session's rating is clearly below the patient's own usual level, more than their "
            "ordinary session-to-session variation. Ruptures are common (about one therapy in two) "
            "and, once repaired, go with better outcome."
        ),
        prompt=(
            "Raise it gently at the start of the next session: invite the patient's view of what "
            "felt off, validate their experience, and explore it together rather than moving on."
        ),
        tone="alert",
    ),
    "repair": FlagWording(
        title="Repair",
        short="Repaired",
        meaning=(
            "After a drop, the rating is back within the patient's usual range. Repaired ruptures "
            "are associated with better outcome (Eubanks, Muran & Safran 2018: r = .29)."
        ),
        prompt="It can help to name with the patient what changed, and what made it possible to go on.",
        tone="ok",
    ),
    "decline": FlagWording(
        title="Declining trend",
        short="Declining",
        meaning=(
            "Over several sessions the alliance has been below this patient's usual level, more "
            "than their session-to-session variation explains: a steady slide, a run of slightly "
            "low sessions, or a drop that has not fully come back. In structured treatments (CBT, "
            "exposure) within-patient changes in task agreement predicted symptom change."
        ),
        prompt=(
            "Revisit the rationale for what you are doing in sessions and whether it still fits; "
            "agree the next tasks together with the patient."
        ),
        tone="warn",
    ),
    "sudden_loss": FlagWording(
        title="Sudden loss",
        short="Sudden loss",
        meaning=(
            "A large drop between two sessions that has lasted, rather than a one-session dip "
            "(Tang & DeRubeis 1999 criteria)."
        ),
        prompt="Check in about events inside or outside therapy around that session.",
        tone="warn",
    ),
    "perspective_gap": FlagWording(
        title="Therapist rated the session well above the patient",
        short="Therapist rated higher",
        meaning=(
            "The therapist's rating of this session is much higher than the patient's, further apart "
            "than this pair usually is. Therapists and patients attend to different parts of the "
            "relationship, and therapists often miss strains their patients report."
        ),
        prompt=(
            "Ask the patient how the session went for them, and what you might have missed; the "
            "patient's view of the alliance predicts outcome better than the therapist's."
        ),
        tone="warn",
    ),
    "low_alliance": FlagWording(
        title="Alliance has stayed low",
        short="Alliance stayed low",
        meaning=(
            "The patient's total alliance rating has been below the clinic's cut-off for several "
            "sessions in a row. Unlike the other flags this does not compare the patient with "
            "their own usual level: a low alliance that has become the patient's usual is still low, "
            "and a weak alliance goes with poorer outcome and dropout."
        ),
        prompt=(
            "Make the relationship the topic: ask what is not working for the patient, whether the "
            "goals and the way you work still fit, and consider discussing it in supervision."
        ),
        tone="alert",
    ),
    "sudden_gain": FlagWording(
        title="Sudden gain",
        short="Sudden gain",
        meaning="A large rise between two sessions that has lasted (Tang & DeRubeis 1999 criteria).",
        prompt="Explore with the patient what helped; sudden gains often come before good outcomes.",
        tone="ok",
    ),
}

PATTERNS = {
    "crisis": FlagWording(
        title="Possible crisis: explore with the patient",
        short="Possible crisis",
        meaning=(
            "A patient who usually rates the alliance highly (top quarter of this clinic) is now "
            "falling or in an open rupture. In the research this can signal a crisis, in or "
            "outside therapy."
        ),
        prompt="Ask openly how things are, in therapy and in the patient's life.",
        tone="warn",
    ),
    "corrective_experience": FlagWording(
        title="Possible corrective experience",
        short="Corrective experience?",
        meaning=(
            "A patient who usually rates the alliance low (bottom quarter of this clinic) is rating "
            "it higher and higher. For some patients a growing alliance is itself part of the change."
        ),
        prompt="Notice it with the patient; it may be worth talking about what feels different.",
        tone="ok",
    ),
}

RULES = {
    "baseline_k_sd": "{scale} {score:.2f} was at or below {bound:.2f}: the patient's usual level "
    "{baseline:.2f} (mean of {n_baseline:.0f} earlier sessions) minus {threshold:.2f} points, the "
    "lowest a session is likely to be by chance given their session-to-session variation "
    "({s_used:.2f} points, shrunk towards the clinic's usual variation while the sessions are few).",
    "previous_session": "{scale} fell from {previous:.2f} to {score:.2f} since the previous session, "
    "at least {threshold:.2f} points (the larger of the reliable-change index {rc:.2f} and what the "
    "clinic's usual session-to-session variation allows), before enough sessions were in to know "
    "this patient's usual level.",
    "back_within_s": "{scale} {score:.2f} is back at or above {target:.2f}: the usual level before the "
    "rupture at session {rupture_session:.0f} ({baseline:.2f}) minus one session-to-session "
    "variation ({s_used:.2f}).",
    "window_ended": "{scale} {score:.2f} did not come back to {target:.2f} or above (the usual level "
    "before the rupture at session {rupture_session:.0f}, {baseline:.2f}, minus one variation, "
    "{s_used:.2f}) within the sessions after it.",
    "lower_cusum": "The running sum of the sessions' distances below the usual level ({baseline:.2f}), "
    "each in units of the patient's session-to-session variation ({s_used:.2f}), reached "
    "{cusum:.1f}, over the decision limit {threshold:.1f} (a lower CUSUM chart).",
    "gap_above_usual": "The therapist rated the session {therapist_score:.2f} and the patient {score:.2f}: a "
    "difference of {gap:+.2f} (therapist minus patient), at or above the limit {threshold:+.2f}, which is "
    "this pair's usual difference ({usual_gap:+.2f}, over {n_baseline:.0f} earlier sessions both rated) "
    "plus a margin of its spread ({s_used:.2f}) that a steady pair exceeds in about 1 session in 500 at "
    "the standard budget.",
    "below_cutoff": "{scale} was below the clinic's cut-off {cutoff:.2f} at {run_length:.0f} "
    "sessions in a row (sessions {from_session:.0f} to {to_session:.0f}; {score:.2f} at the last). It "
    "is raised again only after a session at or above the cut-off.",
    "tang_derubeis": "{scale} moved between sessions {from_session:.0f} and {to_session:.0f} by at least "
    "the reliable-change index ({rc:.2f}), and the mean of the sessions after ({mean_after:.2f}) "
    "differs from the mean before ({mean_before:.2f}) by more than {t_crit:.2f} times their pooled "
    "spread.",
}

#: How sure each rule is, from the power study in docs/methods.md ("Honest power"): what it
#: finds by noise and effect size, at the clinic's false-alarm budget.
POWER = {
    "baseline_k_sd": "How sure: a drop of 1 point is caught at that session about 99 times in 100 when "
    "a patient's sessions vary by about 0.15 points, 8 in 10 at 0.3, 1 in 3 at 0.5; close to what any "
    "test of one session can do at the same rate of false alarms.",
    "previous_session": "How sure: with only one or two sessions in, only large drops are flagged "
    "(this rule needs more than measurement noise), so smaller ones wait for a usual level.",
    "back_within_s": "",
    "window_ended": "How sure: a steady patient gets a false unrepaired rupture in fewer than 1 in "
    "100 therapies, even when their sessions vary a lot.",
    "lower_cusum": "How sure: a decline of 0.10 points per session is usually raised within 4 "
    "sessions when sessions vary by about 0.15 points, within 6 at 0.3 and 8 at 0.5; one of 0.05 "
    "points per session takes about 6 to 10 sessions.",
    "tang_derubeis": "",
    "below_cutoff": "",
    "gap_above_usual": "",
}


#: What a decline means, by how it was detected (``monitoring.analytics.explain``'s
#: ``decline_detection``: every decline is raised by the lower CUSUM; the words follow what made
#: the sum cross its limit).
DECLINE_MEANINGS = {
    DECLINE_SLOPE: (
        "The alliance has been sliding steadily over several sessions, by small drops that no "
        "single session shows. In structured treatments (CBT, exposure) within-patient changes in "
        "task agreement predicted symptom change."
    ),
    DECLINE_CUMULATIVE: (
        "Several sessions have been a little below this patient's usual level. None stands out and "
        "they are not falling steadily, but together they are more than the patient's usual "
        "session-to-session variation explains."
    ),
    DECLINE_DROP: (
        "This decline comes from a rupture: one large drop, and the sessions after it that stayed "
        "low or only partly came back, added up on the running sum of sessions below usual. It is "
        "part of that rupture's story, not a slow slide."
    ),
}

#: "How was this decided?" for a decline, after the CUSUM sentence: what made the sum cross.
DECLINE_HOW = {
    DECLINE_SLOPE: "Read as a steady slide: the scores fell about {fall:.2f} points per session over "
    "the last {slope_n:.0f} sessions (slopes flatter than {min_slope:.2f} points per session are not "
    "called a slide).",
    DECLINE_CUMULATIVE: "Read as sessions a little below usual that added up: from session "
    "{from_session:.0f} to {to_session:.0f} they averaged {mean_after:.2f}, without a steady fall.",
    DECLINE_DROP: "Most of the sum comes from the drop at session {rupture_session:.0f} (a rupture) "
    "and the sessions after it; the sum had been above zero since session {from_session:.0f}.",
}


def decline_how(detail: dict[str, object], *, slope_window: int | None = None) -> str:
    """How a stored decline was detected: ``slope``, ``cumulative`` or ``drop``."""
    return decline_detection(detail, slope_window=slope_window or _SLOPE_WINDOW)


def flag_meaning(*, kind: str, detail: dict[str, object], slope_window: int | None = None) -> str:
    """What a stored flag means for a clinician: a decline's meaning follows how it was detected."""
    if kind == "decline":
        return DECLINE_MEANINGS[decline_how(detail, slope_window=slope_window)]
    return FLAGS[kind].meaning


def score_bound(
    *, rule: str, detail: dict[str, object], threshold: float | None, magnitude: float | None
) -> float | None:
    """The score a stored flag's rule compared the session's score with, from the numbers stored
    with it: the analysis keeps the drop it allows (``threshold``), a clinician reads a score.

    - rupture, ``baseline_k_sd``: ``baseline - threshold`` (at or below it is a rupture);
    - rupture, ``previous_session``: ``previous score - threshold``;
    - repair and unrepaired: ``baseline - repair_tolerance * s_used`` (back at or above it);
    - below the clinic's cut-off: the cut-off;
    - a decline (CUSUM limit) and a sudden change (a change, not a score): None.
    """

    def number(key: str) -> float:
        value = detail.get(key)
        try:
            return math.nan if value is None else float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return math.nan

    limit = math.nan if threshold is None else float(threshold)
    if rule == "baseline_k_sd":
        bound = number("baseline") - limit
    elif rule == "previous_session":
        drop = math.nan if magnitude is None else float(magnitude)
        bound = number("score") + drop - limit
    elif rule in ("back_within_s", "window_ended"):
        tolerance = number("repair_tolerance")
        bound = number("baseline") - (1.0 if math.isnan(tolerance) else tolerance) * number("s_used")
    elif rule == "below_cutoff":
        bound = number("cutoff")
    else:
        return None
    return None if math.isnan(bound) else bound


#: What a stored flag's threshold (as :func:`threshold_compared` gives it) is compared with.
COMPARED = {
    "baseline_k_sd": "score at or below",
    "previous_session": "score at or below",
    "back_within_s": "score at or above",
    "window_ended": "score still below",
    "below_cutoff": "score below",
    "lower_cusum": "CUSUM above",
    "tang_derubeis": "change of at least",
    "gap_above_usual": "therapist-patient difference at or above",
}


def threshold_compared(
    *, rule: str, detail: dict[str, object], threshold: float | None, magnitude: float | None
) -> float | None:
    """The threshold a clinician reads: the score the rule compared with where it compares a
    score (:func:`score_bound`), else the stored one (a CUSUM limit, a change)."""
    bound = score_bound(rule=rule, detail=detail, threshold=threshold, magnitude=magnitude)
    return threshold if bound is None else bound


def rule_text(
    *,
    rule: str,
    scale: str,
    detail: dict[str, object],
    threshold: float | None,
    slope_window: int | None = None,
) -> str:
    """The rule and numbers behind a stored flag, in one sentence, then how sure the rule is;
    empty if unknown. Every threshold is printed as the score it compares against
    (:func:`score_bound`); a decline says what made its sum cross the limit (:func:`decline_how`;
    ``slope_window`` from the flag's configuration)."""
    template = RULES.get(rule)
    if template is None:
        return ""
    values: dict[str, object] = {k: (math.nan if v is None else v) for k, v in detail.items()}
    limit = math.nan if threshold is None else threshold
    values.update(scale=SCALE_NAMES.get(scale, scale), threshold=limit)
    try:
        score = float(values.get("score", math.nan))  # type: ignore[arg-type]
        magnitude = float(values.get("magnitude", limit))  # type: ignore[arg-type]
        bound = score_bound(rule=rule, detail=detail, threshold=threshold, magnitude=magnitude)
        values.update(
            bound=math.nan if bound is None else bound,
            target=math.nan if bound is None else bound,
            previous=score + magnitude,
        )
        sentence = template.format(**values)
        if rule == "lower_cusum":
            sentence = f"{sentence} {_decline_how_text(detail, values, slope_window)}".rstrip()
    except (KeyError, ValueError, TypeError):
        return ""
    power = POWER.get(rule, "")
    return f"{sentence} {power}".strip()


def _decline_how_text(detail: dict[str, object], values: dict[str, object], slope_window: int | None) -> str:
    """:data:`DECLINE_HOW` filled in; empty where the stored numbers lack what it prints (a
    decline stored before its window was kept)."""
    window = slope_window or _SLOPE_WINDOW
    how = decline_how(detail, slope_window=window)
    numbers = {
        k: float(v) for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    numbers.update(
        fall=-numbers.get("slope", math.nan),
        slope_n=min(numbers.get("t", math.nan), window),
        min_slope=MIN_SLOPE,
    )
    needed = {
        DECLINE_SLOPE: ("fall", "slope_n"),
        DECLINE_CUMULATIVE: ("from_session", "to_session", "mean_after"),
        DECLINE_DROP: ("rupture_session", "from_session"),
    }[how]
    if any(math.isnan(numbers.get(key, math.nan)) for key in needed):
        return ""
    return DECLINE_HOW[how].format(**numbers)


def deviation_words(z: float | None) -> str:
    """How the latest session sits against the patient's own level, in the patient's spread."""
    if z is None or math.isnan(z):
        return ""
    if z <= -2.0:
        return "well below usual"
    if z <= -1.0:
        return "below usual"
    if z < 1.0:
        return "usual"
    if z < 2.0:
        return "above usual"
    return "well above usual"
