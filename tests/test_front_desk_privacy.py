"""Front desk sees that a clinician must look, never why: no condition, medication or rule
name on any page, feed, export or message they can reach (issue 10, point 4).

The walk covers every URL pattern of the project, so pages added later are scanned too.
"""

import html
import re
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RoutePattern

from clinic.models import CalendarFeed
from patients.models import MedicalFlag
from plans import safety
from plans.models import AdverseEvent, Session
from tests.factories import (
    TODAY,
    AcneActivityFactory,
    AdverseEventFactory,
    MedicalFlagFactory,
    PatientFactory,
    ScarSiteFactory,
    SessionFactory,
    SessionTreatmentFactory,
    at,
    course,
    frozen,
    make_plan,
    treatment,
)

pytestmark = pytest.mark.django_db

FLAG_WORDS = [
    "isotretinoin",
    "Isotretinoin",
    "pregnan",
    "Pregnan",
    "alicyl",
    "erpes",
    "leeding",
    "eloid",
    "Anticoagulant",
    "Warfarin",
    "Breakout",
    "breakout",
    "Fitzpatrick",
]

# A detail text per flag kind, each a word no page would show for another reason.
FLAG_DETAILS = {
    "isotretinoin": "Roaccutane 20 mg daily",
    "pregnancy": "Expecting in July",
    "breastfeeding": "Nursing since March",
    "salicylate_allergy": "Hives after aspirin",
    "keloid_history": "Earlobe keloid 2019",
    "anticoagulant": "Warfarin 5 mg",
    "bleeding_disorder": "Von Willebrand type 1",
    "herpes_simplex": "Cold sores twice yearly",
    "other_allergy": "Nickel contact dermatitis",
    "medication": "Spironolactone 100 mg",
}
OTHER_ALLERGIES = "Penicillin rash"
MEDICATIONS = "Metformin 500 mg"
OVERRIDE_REASON = "Obstetrician agreed in writing"
EVENT_NOTES = "Crusted vesicles on upper lip"
SESSION_NOTES = "Marked erythema after the second pass"
INTERNAL_NOTES = "Discuss antiviral cover before laser"

# Front desk records consents on paper, so the consent rule's wording is theirs to see; every
# other rule names a condition, a medication or a clinical judgement.
NOT_CLINICAL_RULES = {"treatment_consent"}
STEMS = [
    "isotretinoin",
    "pregnan",
    "breastfeed",
    "salicyl",
    "aspirin",
    "anticoagul",
    "herpes",
    "keloid",
    "bleeding",
    "fitzpatrick",
    "pigmentation",
    "antiviral",
    "bruising",
    "breakout",
    "acne is recorded",
    "poor healing",
]


def flag_words():
    """Everything that would tell front desk why a clinician must look."""
    words = set(STEMS)
    words |= {r.title for code, r in safety.RULES.items() if code not in NOT_CLINICAL_RULES}
    words |= set(MedicalFlag.Kind.labels) | set(safety.FLAG_NAMES.values())
    words |= set(FLAG_DETAILS.values())
    words |= {OTHER_ALLERGIES, MEDICATIONS, OVERRIDE_REASON, EVENT_NOTES, SESSION_NOTES}
    words |= {INTERNAL_NOTES, AdverseEvent.Kind.HERPES_REACTIVATION.label}
    return sorted({w.lower() for w in words})


WORDS = flag_words()


def leaks(content):
    """The flag words in a response body (HTML entities decoded, case ignored)."""
    text = html.unescape(content.decode("utf-8", errors="replace")).lower()
    return [word for word in WORDS if word in text]


@pytest.fixture
def flagged(clinician):
    """A patient with every flag, a breakout and a microneedling visit today."""
    patient = PatientFactory(first_name="Greer", fitzpatrick_type=5)
    for kind in MedicalFlag.Kind.values:
        MedicalFlagFactory(
            patient=patient, kind=kind, started_on=date(2025, 6, 1), detail="Warfarin 5 mg"
        )
    make_plan(
        user=clinician,
        sites=[ScarSiteFactory(patient=patient)],
        courses=[
            course("microneedling", 1),
            course("chemical_peel", 1, default_parameters={"agent": "salicylic"}),
        ],
        start=TODAY,
        overrides={
            "rule:active_breakout": "x",
            "rule:pregnancy_salicylic": "x",
            "rule:salicylate_allergy": "x",
        },
    )
    AcneActivityFactory(patient=patient, recorded_on=TODAY, level="severe")
    return patient


@pytest.mark.parametrize("page", ["home", "diary_day"])
def test_front_desk_sees_a_neutral_badge_and_no_flag_word(front_desk_client, flagged, page):
    with frozen(TODAY):
        html = front_desk_client.get(reverse(page)).content.decode()
    assert "Greer" in html
    assert "Clinician review" in html
    for word in FLAG_WORDS:
        assert word not in html, word


def test_a_clinician_sees_the_rules_by_name(clinician_client, flagged):
    with frozen(TODAY):
        html = clinician_client.get(reverse("home"), {"clinician": ""}).content.decode()
    assert "Active breakout" in html and "Salicylic acid in pregnancy" in html


# --- every page, on a patient with every flag ---------------------------------------------

CLEARED = TODAY + timedelta(days=20)  # the breakout is recorded as cleared on this day


@pytest.fixture
def world(clinician):
    """A patient with every flag, a breakout until CLEARED, skin type V, free-text allergies
    and medications; an active plan (salicylic peel, microneedling, laser) booked past its
    blocks with overrides, a draft plan, a logged visit with an adverse event."""
    patient = PatientFactory(
        first_name="Greer",
        last_name="Ramsdell",
        fitzpatrick_type=5,
        other_allergies=OTHER_ALLERGIES,
        medications=MEDICATIONS,
    )
    flags = [
        MedicalFlagFactory(patient=patient, kind=kind, started_on=date(2025, 6, 1), detail=text)
        for kind, text in FLAG_DETAILS.items()
    ]
    assert {f.kind for f in flags} == set(MedicalFlag.Kind.values)
    AcneActivityFactory(patient=patient, recorded_on=TODAY - timedelta(days=3), level="severe")
    AcneActivityFactory(patient=patient, recorded_on=CLEARED, level="none")
    # Scar types whose names are not flag words (a keloid *scar* is front desk's to see).
    site = ScarSiteFactory(patient=patient, body_site="left_cheek", scar_types=["rolling"])
    plan = make_plan(
        user=clinician,
        sites=[site],
        title="Cheek scars",
        internal_notes=INTERNAL_NOTES,
        courses=[
            course("microneedling", 2, every=42),
            course("chemical_peel", 1, offset=7, default_parameters={"agent": "salicylic"}),
            course("pulsed_dye_laser", 1, offset=14),
        ],
        start=TODAY,
        overrides={
            "rule:active_breakout": OVERRIDE_REASON,
            "rule:pregnancy_salicylic": OVERRIDE_REASON,
            "rule:salicylate_allergy": OVERRIDE_REASON,
        },
    )
    draft = make_plan(
        user=clinician,
        sites=[site],
        title="Peel trial",
        activate=False,
        start=TODAY + timedelta(days=3),
        courses=[
            course("chemical_peel", 1, default_parameters={"agent": "salicylic"}),
            course("microneedling", 1, offset=1),
        ],
    )
    sessions = list(plan.sessions.order_by("scheduled_at"))
    today_session = sessions[0]
    assert today_session.scheduled_on == TODAY
    peel = next(s for s in sessions if s.treatments.filter(treatment__code="chemical_peel"))
    needling_later = sessions[-1]
    assert needling_later.treatments.get().treatment.code == "microneedling"
    assert plan.sessions.filter(overrides__reason=OVERRIDE_REASON).exists()
    done = SessionFactory(
        plan=plan,
        scheduled_at=at(TODAY - timedelta(days=7), 10),
        status=Session.Status.COMPLETED,
        completed_at=at(TODAY - timedelta(days=7), 11),
        notes=SESSION_NOTES,
    )
    SessionTreatmentFactory(session=done, treatment=treatment("pulsed_dye_laser"))
    event = AdverseEventFactory(
        session=done,
        kind=AdverseEvent.Kind.HERPES_REACTIVATION,
        onset_on=TODAY - timedelta(days=5),
        notes=EVENT_NOTES,
        scar_site=site,
    )
    feed = CalendarFeed.objects.create(user=clinician)
    return SimpleNamespace(
        patient=patient,
        site=site,
        flag=flags[0],
        consent=patient.consents.get(),
        plan=plan,
        draft=draft,
        today_session=today_session,
        peel=peel,
        needling_later=needling_later,
        done=done,
        event=event,
        feed=feed,
    )


def _routes(resolver=None, prefix=""):
    """(name, route) of every pattern outside the admin, e.g. ("plan_detail", "plans/<int:pk>/")."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                continue
            yield from _routes(entry, prefix + entry.pattern._route)
        elif isinstance(entry, URLPattern) and isinstance(entry.pattern, RoutePattern):
            yield entry.name, prefix + entry.pattern._route


def _paths(route, w):
    """Concrete paths for a route, with this world's records in every parameter."""
    by_prefix = {
        "patients/": [w.patient.pk],
        "plans/": [w.plan.pk, w.draft.pk],
        "sessions/": [w.today_session.pk, w.peel.pk, w.needling_later.pk, w.done.pk],
        "adverse-events/": [w.event.pk],
        "photos/": [999999],
    }
    pks = next((v for p, v in by_prefix.items() if route.startswith(p)), [999999])
    fixed = {
        "site_pk": w.site.pk,
        "flag_pk": w.flag.pk,
        "consent_pk": w.consent.pk,
        "plan_pk": w.plan.pk,
        "token": w.feed.token,
        "action": "on",
    }
    paths = []
    for pk in pks:
        path = re.sub(r"<(?:\w+:)?pk>", str(pk), route)
        for name, value in fixed.items():
            path = re.sub(rf"<(?:\w+:)?{name}>", str(value), path)
        assert "<" not in path, f"No sample value for a parameter of {route}"
        paths.append("/" + path)
    return paths


# Query variants: other days, other views of the same page, searches.
QUERIES = {
    "home": [
        {"clinician": ""},
        {"day": str(TODAY + timedelta(days=7))},
        {"day": str(TODAY + timedelta(days=14))},
        {"day": str(TODAY + timedelta(days=42))},
    ],
    "diary_day": [
        {"day": str(TODAY + timedelta(days=7))},
        {"day": str(TODAY + timedelta(days=14))},
        {"by": "room"},
    ],
    "diary_week": [{"day": str(TODAY + timedelta(days=7))}, {"day": str(TODAY + timedelta(42))}],
    "free_slots": [{"kind": "consultation", "minutes": "30"}],
    "patient_list": [{"q": "Greer"}, {"q": "Ramsdell", "archived": "on"}],
    "appointment_new": [{"patient": "{patient}"}],
}

# Pages front desk works in every day: the walk must reach them, or it proves nothing.
MUST_OPEN = {
    "home",
    "diary_day",
    "diary_week",
    "free_slots",
    "appointment_new",
    "patient_list",
    "patient_detail",
    "patient_edit",
    "plan_detail",
    "session_detail",
    "session_move",
    "session_book",
    "account",
}


def _scan(response, label):
    """Flag words in a page and in the messages it was rendered with."""
    found = leaks(response.content)
    for message in response.context["messages"] if response.context else ():
        found += leaks(str(message).encode())
    return [f"{label} ({response.status_code}): {word}" for word in found]


def test_no_page_front_desk_can_open_names_a_flag(front_desk_client, world):
    problems, opened = [], set()
    with frozen(TODAY):
        for name, route in sorted(set(_routes())):
            if name == "logout":
                continue
            for path in _paths(route, world):
                variants = [{}] + [
                    {k: v.format(patient=world.patient.pk) for k, v in q.items()}
                    for q in QUERIES.get(name, [])
                ]
                for query in variants:
                    response = front_desk_client.get(path, query, follow=True)
                    problems += _scan(response, f"GET {path}?{query}")
                    if response.status_code == 200 and not response.redirect_chain:
                        opened.add(name)
        for path in ("/admin/", "/patients/999999/", "/no-such-page/"):
            problems += _scan(front_desk_client.get(path, follow=True), f"GET {path}")
    assert opened >= MUST_OPEN, sorted(MUST_OPEN - opened)
    assert not problems, "\n".join(problems)


def test_no_form_front_desk_posts_empty_answers_with_a_flag(front_desk_client, world):
    """An empty POST to every URL: whatever error or message comes back names no flag."""
    problems = []
    with frozen(TODAY):
        for name, route in sorted(set(_routes())):
            if name in ("logout", "login"):
                continue
            for path in _paths(route, world):
                response = front_desk_client.post(path, follow=True)
                problems += _scan(response, f"POST {path}")
    assert not problems, "\n".join(problems)


def _move(client, session, day, hour=10):
    return client.post(
        reverse("session_move", args=[session.pk]),
        {"date": str(day), "time": f"{hour}:00", "version": session.version},
        follow=True,
    )


def _book(client, plan, code, day, hour=11):
    return client.post(
        reverse("session_book", args=[plan.pk]),
        {
            "course": plan.courses.get(treatment__code=code).pk,
            "date": str(day),
            "time": f"{hour}:00",
        },
        follow=True,
    )


def test_a_blocked_move_tells_front_desk_to_get_a_clinician_and_not_why(front_desk_client, world):
    with frozen(TODAY):
        response = _move(front_desk_client, world.peel, TODAY + timedelta(days=9))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Nothing was saved" in body and "Clinician review" in body
    assert leaks(response.content) == []
    world.peel.refresh_from_db()
    assert world.peel.scheduled_on == TODAY + timedelta(days=7)


def test_a_move_with_warnings_says_check_with_clinician_and_the_date(front_desk_client, world):
    new_day = CLEARED + timedelta(days=1)
    with frozen(TODAY):
        response = _move(front_desk_client, world.needling_later, new_day)
    messages = [str(m) for m in response.context["messages"]]
    assert "Session moved." in messages
    assert f"Check with clinician before {new_day:%-d %b %Y}" in messages
    assert leaks(response.content) == []
    assert not any(leaks(m.encode()) for m in messages)


def test_booking_an_extra_session_shows_front_desk_only_neutral_words(front_desk_client, world):
    with frozen(TODAY):
        blocked = _book(front_desk_client, world.plan, "chemical_peel", TODAY + timedelta(days=30))
        warned = _book(front_desk_client, world.plan, "microneedling", CLEARED + timedelta(days=9))
    assert "Clinician review" in blocked.content.decode()
    assert leaks(blocked.content) == []
    messages = [str(m) for m in warned.context["messages"]]
    assert any(m.startswith("Booked:") for m in messages), messages
    assert f"Check with clinician before {CLEARED + timedelta(days=9):%-d %b %Y}" in messages
    assert leaks(warned.content) == []


def test_the_move_page_and_a_draft_plan_show_front_desk_a_badge(front_desk_client, world):
    with frozen(TODAY):
        move = front_desk_client.get(reverse("session_move", args=[world.today_session.pk]))
        draft = front_desk_client.get(reverse("plan_detail", args=[world.draft.pk]))
    assert "Check with clinician" in move.content.decode()
    assert "Clinician review" in draft.content.decode()
    assert leaks(move.content) == leaks(draft.content) == []


def test_a_clinician_still_reads_the_rules_on_the_same_pages(clinician_client, world):
    with frozen(TODAY):
        move = clinician_client.get(reverse("session_move", args=[world.today_session.pk]))
        blocked = _move(clinician_client, world.peel, TODAY + timedelta(days=9))
        draft = clinician_client.get(reverse("plan_detail", args=[world.draft.pk]))
        warned = _move(clinician_client, world.needling_later, CLEARED + timedelta(days=1))
    assert "Recent isotretinoin" in move.content.decode()
    assert "Salicylic acid in pregnancy" in blocked.content.decode()
    assert "Salicylic acid in pregnancy" in draft.content.decode()
    messages = " ".join(str(m) for m in warned.context["messages"])
    assert "Isotretinoin" in messages and "bleeding" in messages
