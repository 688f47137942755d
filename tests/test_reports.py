"""Progress reports: the staff and patient copies, the PDF, the sessions CSV and their cost."""

import csv
import io
import re
import time
from dataclasses import dataclass
from datetime import date

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pypdf import PdfReader

from patients.models import Consent
from plans.models import Assessment, SafetyOverride, Session, SessionPhoto, Treatment
from plans.reports import build_report
from plans.services import AdverseEventInput, PhotoInput
from tests.factories import (
    ConsentFactory,
    PatientFactory,
    ScarSiteFactory,
    baseline,
    course,
    log_session,
    make_plan,
    tiny_png,
    treatment,
)

pytestmark = pytest.mark.django_db

TODAY = "2026-02-10"


@pytest.fixture(autouse=True)
def today():
    """Reports are dated and say what comes next: the clinic's clock is fixed mid-plan."""
    with time_machine.travel(f"{TODAY} 12:00Z", tick=True):
        yield


INTERNAL_NOTE = "Internal-note-ABC"
OVERRIDE_REASON = "Reason-XYZ-only-for-staff"
SESSION_NOTE = "Session-note-DEF"
RECORD = "REC-774411"


@dataclass
class Story:
    patient: object
    back: object
    plan: object
    sessions: list


def sessions_of(plan):
    return list(plan.sessions.order_by("scheduled_at"))


@pytest.fixture
def story(clinician):
    """Wilhelmina's hypertrophic back: VSS 9 at baseline, cryotherapy x4 every 28 days from
    5 Jan 2026, sessions 1 and 2 done (VSS 7 then 5), the third booked for 2 Mar 2026."""
    patient = PatientFactory(first_name="Wilhelmina", last_name="Quorrington", record_number=RECORD)
    back = ScarSiteFactory(patient=patient, body_site="upper_back", scar_types=["hypertrophic"])
    baseline(back, "vss", 9, user=clinician, on=date(2026, 1, 2))
    plan = make_plan(
        user=clinician,
        sites=[back],
        courses=[course("cryotherapy", 4, every=28)],
        title="Back cryotherapy",
        internal_notes=INTERNAL_NOTE,
    )
    first, second, *_ = sessions = sessions_of(plan)
    log_session(
        first,
        clinician,
        scores=[(back, "vss", 7)],
        events=[
            AdverseEventInput(
                "blistering", "moderate", scar_site=back, resolved_on=date(2026, 1, 12)
            )
        ],
    )
    log_session(
        second,
        clinician,
        scores=[(back, "vss", 5)],
        events=[AdverseEventInput("hyperpigmentation", "mild", scar_site=back)],
        notes=SESSION_NOTE,
    )
    SafetyOverride.objects.create(
        session=second,
        treatment=treatment("cryotherapy"),
        rule="keloid_history",
        finding="Keloid history: freezing may provoke a keloid.",
        reason=OVERRIDE_REASON,
        overridden_by=clinician,
    )
    return Story(patient, back, plan, sessions)


def report_url(patient, **query):
    url = reverse("patient_report", args=[patient.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def text_of(response):
    """The report as text with tags removed and spaces collapsed, for phrases split by markup.

    Only the report itself: the navigation bar around it has words of its own."""
    html = response.content.decode()
    html = html[html.index('<article class="report') : html.index("</article>")]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def series_html(response, instrument):
    """The markup of one instrument's series block (chart and numbers) on the page."""
    html = response.content.decode()
    start = html.index(f'data-instrument="{instrument}"')
    return html[start : html.index("</table>", start)]


def pdf_text(response):
    reader = PdfReader(io.BytesIO(response.content))
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))


def pdf_images(response):
    """The distinct images in a PDF (pages may share one resource dictionary)."""
    pages = PdfReader(io.BytesIO(response.content)).pages
    return {image.data for page in pages for image in page.images}


# --- the staff copy ------------------------------------------------------------------------


def test_staff_report_shows_baseline_latest_and_change_with_its_direction(clinician_client, story):
    response = clinician_client.get(report_url(story.patient))

    assert response.status_code == 200
    text = text_of(response)
    assert "Vancouver Scar Scale: 9 (2 Jan 2026; range 0-13)" in text
    assert "Baseline 9 → latest 5 : -4 points (-44%), better" in text


def test_staff_report_shows_the_sessions_done_with_their_parameters(clinician_client, story):
    text = text_of(clinician_client.get(report_url(story.patient)))

    assert "2 of 4 sessions done, 2 left" in text
    assert "5 Jan 2026 Cryotherapy (1 of 4) Method spray, Freeze-thaw cycles 2" in text
    assert "2 Feb 2026 Cryotherapy (2 of 4) Method spray" in text
    assert "2 Mar 2026 Cryotherapy" not in text  # booked, not done


def test_staff_report_lists_adverse_events_and_whether_they_resolved(clinician_client, story):
    text = text_of(clinician_client.get(report_url(story.patient)))

    assert "5 Jan 2026 Blistering (moderate) Upper back yes, 12 Jan 2026" in text
    assert "2 Feb 2026 Hyperpigmentation (mild) Upper back not yet" in text


def test_staff_report_shows_the_next_session(clinician_client, story):
    text = text_of(clinician_client.get(report_url(story.patient)))

    assert "next on Monday 2 March 2026, 09:00" in text
    assert "Next session: Monday 2 March 2026, 09:00 (Cryotherapy)" in text


def test_staff_report_shows_staff_only_notes_and_overrides(clinician_client, story):
    text = text_of(clinician_client.get(report_url(story.patient)))

    for secret in (INTERNAL_NOTE, OVERRIDE_REASON, SESSION_NOTE, RECORD):
        assert secret in text
    assert "Report of 10 February 2026 · Staff copy" in text


def test_report_chart_has_one_point_per_score_of_the_series(clinician_client, story):
    block = series_html(clinician_client.get(report_url(story.patient)), "vss")

    assert block.count('<svg xmlns="http://www.w3.org/2000/svg" class="trend-chart"') == 1
    assert block.count('class="point"') == 3
    assert "<title>2026-01-02: 9</title>" in block
    assert "<title>2026-02-02: 5</title>" in block
    assert block.count('class="session-marker"') == 2  # the two sessions done


def test_a_session_score_on_another_instrument_gets_its_own_series(
    clinician, clinician_client, story
):
    # A session is logged on its day, not before (issue 9): go to 2 Mar to log it.
    with time_machine.travel("2026-03-02 12:00Z", tick=True):
        log_session(story.sessions[2], clinician, scores=[(story.back, "pain", 3)])
    response = clinician_client.get(report_url(story.patient))

    assert series_html(response, "vss").count('class="point"') == 3
    pain = series_html(response, "pain")
    assert pain.count('class="point"') == 1
    assert "Latest 3 on 2 Mar 2026" in re.sub(r"<[^>]+>", "", pain)


def test_a_sites_chart_marks_only_the_sessions_that_treated_that_site(
    clinician, clinician_client, story
):
    cheek = ScarSiteFactory(patient=story.patient, body_site="left_cheek", scar_types=["rolling"])
    baseline(cheek, "gb_qualitative", 3, user=clinician, on=date(2026, 1, 2))
    needling = make_plan(
        user=clinician,
        sites=[cheek],
        courses=[course("microneedling", 1)],
        start=date(2026, 1, 20),
    )
    log_session(needling.sessions.get(), clinician, scores=[(cheek, "gb_qualitative", 2)])

    response = clinician_client.get(report_url(story.patient))

    def markers(instrument):
        return re.findall(r"<title>Session ([0-9-]+)</title>", series_html(response, instrument))

    assert markers("gb_qualitative") == ["2026-01-20"]
    assert markers("vss") == ["2026-01-05", "2026-02-02"]


def test_report_pages_are_private_and_not_stored(clinician_client, story):
    for url in (report_url(story.patient), reverse("patient_report_pdf", args=[story.patient.pk])):
        cache_control = clinician_client.get(url)["Cache-Control"]
        assert "private" in cache_control
        assert "no-store" in cache_control


# --- the patient copy ----------------------------------------------------------------------


def test_patient_copy_leaves_out_internal_notes_overrides_and_record_number(
    clinician_client, story
):
    response = clinician_client.get(report_url(story.patient, copy="patient"))

    assert response.status_code == 200
    html = response.content.decode()
    for secret in (INTERNAL_NOTE, OVERRIDE_REASON, SESSION_NOTE, RECORD, "Keloid history"):
        assert secret not in html
    assert "Staff copy</strong>" not in html


def test_patient_copy_uses_plain_words(clinician_client, story):
    text = text_of(clinician_client.get(report_url(story.patient, copy="patient")))

    assert "Scar appearance score (Vancouver)." in text
    assert "Vancouver Scar Scale" not in text
    assert "What this score means: How red, dark, stiff and raised a scar is." in text
    assert (
        "It has improved by about two fifths since you started: the score went from 9 to 5 "
        "(44% lower; score range 0 to 13, lower is better)."
    ) in text
    assert "Your scars have improved by about two fifths since you started" in text
    assert "Side effects" in text and "Adverse events" not in text
    # still everything the patient needs
    assert "2 of 4 sessions done" in text
    assert "Hyperpigmentation (mild) Upper back not yet" in text
    assert "Monday 2 March 2026 09:00 Cryotherapy (freezing)" in text


def test_patient_copy_pdf_leaves_out_internal_notes_too(clinician_client, story):
    url = reverse("patient_report_pdf", args=[story.patient.pk]) + "?copy=patient"
    response = clinician_client.get(url)

    text = pdf_text(response)
    assert "Wilhelmina Quorrington" in text
    for secret in (INTERNAL_NOTE, OVERRIDE_REASON, SESSION_NOTE, RECORD):
        assert secret not in text
    assert response["Content-Disposition"] == (
        'attachment; filename="progress-report-all-plans-2026-02-10.pdf"'
    )


# --- PDF -----------------------------------------------------------------------------------


def test_pdf_download_is_a_pdf_with_the_patient_scores_and_dates(clinician_client, story):
    response = clinician_client.get(reverse("patient_report_pdf", args=[story.patient.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    assert response["Content-Disposition"] == (
        f'attachment; filename="cicatrix-{RECORD}-all-plans-staff-2026-02-10.pdf"'
    )
    text = pdf_text(response)
    assert "Progress report: Wilhelmina Quorrington" in text
    assert "Baseline 9 → latest 5: -4 points (-44%), better" in text
    assert "2 Feb 2026 5" in text  # a score as printed in the score table
    assert "5 Jan 2026 Blistering (moderate)" in text
    assert "Cicatrix progress report: Wilhelmina Quorrington" in text  # page header


def test_on_paper_each_chart_has_its_scores_beside_it(clinician_client, story):
    """A series prints as its 100 mm chart column (heading and chart) with the score table to
    its right, level with the chart, not under it (floats in the print CSS)."""
    response = clinician_client.get(reverse("patient_report_pdf", args=[story.patient.pk]))
    placed = {}

    def visit(text, cm, tm, *_):  # WeasyPrint's text matrix: CSS px from the page's top left
        placed.setdefault(text.strip(), (tm[4], tm[5]))

    PdfReader(io.BytesIO(response.content)).pages[0].extract_text(visitor_text=visit)
    px = 96 / 25.4  # per mm
    heading_x, heading_y = placed["Vancouver Scar Scale"]  # the chart column's heading
    table_x, table_y = placed["Scores (0-13)"]  # the score table's caption
    assert heading_x < 20 * px  # at the 14 mm margin
    assert table_x > (14 + 100) * px  # past the 100 mm chart
    assert heading_y < table_y < heading_y + 40 * px  # level with the chart, not below it


def test_plan_pdf_is_a_pdf_of_that_plan(clinician_client, story):
    url = reverse("plan_report_pdf", args=[story.patient.pk, story.plan.pk])
    response = clinician_client.get(url)

    assert response["Content-Type"] == "application/pdf"
    assert "Plan: Back cryotherapy" in pdf_text(response)


def test_a_patient_with_nothing_recorded_gets_an_empty_report_not_an_error(clinician_client):
    patient = PatientFactory()

    text = text_of(clinician_client.get(report_url(patient)))
    pdf = clinician_client.get(reverse("patient_report_pdf", args=[patient.pk]))

    assert "No scar sites recorded." in text
    assert "No plans." in text
    assert "No session is booked." in text
    assert pdf["Content-Type"] == "application/pdf"


HOSTILE = 'Zoë "Q" </style><script>alert(1)</script>'


def test_a_hostile_patient_name_stays_text_in_the_page_and_the_pdf(clinician_client, story):
    story.patient.first_name = HOSTILE
    story.patient.save()

    html = clinician_client.get(report_url(story.patient)).content.decode()
    pdf = clinician_client.get(reverse("patient_report_pdf", args=[story.patient.pk]))

    assert "<script>alert(1)" not in html
    assert "</style><script>" not in html  # not even inside the @page header rule
    assert html.count("</style>") == html.count("<style")  # <style nonce="...">
    assert f"Cicatrix progress report: {HOSTILE} Quorrington" in pdf_text(pdf)  # page header


# --- which report, for whom ----------------------------------------------------------------


def test_plan_report_shows_only_that_plan(clinician, clinician_client, story):
    other = make_plan(
        user=clinician,
        sites=[story.back],
        courses=[course("pulsed_dye_laser", 1)],
        title="Laser later",
        start=date(2026, 6, 1),
    )

    own = text_of(clinician_client.get(reverse("plan_report", args=[story.patient.pk, other.pk])))
    whole = text_of(clinician_client.get(report_url(story.patient)))

    assert "Plan: Laser later" in own
    assert "Back cryotherapy" not in own
    assert "0 of 1 sessions done" in own
    assert "Back cryotherapy" in whole and "Laser later" in whole


def test_another_patients_plan_under_this_patient_is_not_found(clinician, clinician_client, story):
    stranger = PatientFactory()
    theirs = make_plan(user=clinician, patient=stranger, courses=[course("cryotherapy", 1)])

    for name in ("plan_report", "plan_report_pdf", "plan_sessions_csv"):
        wrong = reverse(name, args=[story.patient.pk, theirs.pk])
        assert clinician_client.get(wrong).status_code == 404
        right = reverse(name, args=[stranger.pk, theirs.pk])
        assert clinician_client.get(right).status_code == 200


def test_an_unknown_patient_is_not_found(clinician_client, story):
    missing = story.patient.pk + 1000
    assert clinician_client.get(reverse("patient_report", args=[missing])).status_code == 404
    assert clinician_client.get(reverse("patient_report_pdf", args=[missing])).status_code == 404


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("clinician_client", 200),
        ("manager_client", 200),
        ("front_desk_client", 403),
        ("outsider_client", 403),
    ],
)
def test_reports_are_for_clinicians_and_managers_only(request, story, who, status):
    client = request.getfixturevalue(who)
    patient, plan = story.patient.pk, story.plan.pk

    for url in (
        reverse("patient_report", args=[patient]),
        reverse("patient_report_pdf", args=[patient]),
        reverse("plan_report", args=[patient, plan]),
        reverse("plan_report_pdf", args=[patient, plan]),
        reverse("plan_sessions_csv", args=[patient, plan]),
    ):
        assert client.get(url).status_code == status, url


def test_anonymous_visitors_are_sent_to_log_in(client, story):
    patient, plan = story.patient.pk, story.plan.pk
    for url in (
        reverse("patient_report", args=[patient]),
        reverse("patient_report_pdf", args=[patient]),
        reverse("plan_sessions_csv", args=[patient, plan]),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login") + "?next=")


# --- photos --------------------------------------------------------------------------------


def add_photo(story, session, on, user):
    return SessionPhoto.objects.create(
        session=session,
        scar_site=story.back,
        image=SimpleUploadedFile("back.png", tiny_png(), content_type="image/png"),
        taken_on=on,
        taken_by=user,
    )


def photography_consent(patient, signed_on=date(2026, 1, 2), withdrawn_on=None):
    return ConsentFactory(
        patient=patient,
        kind=Consent.Kind.CLINICAL_PHOTOGRAPHY,
        signed_on=signed_on,
        withdrawn_on=withdrawn_on,
    )


def photo_srcs(response):
    return re.findall(r'<img src="([^"]*)"', response.content.decode())


def test_photos_appear_before_and_latest_with_consent_in_force(clinician, clinician_client, story):
    photography_consent(story.patient)
    before = add_photo(story, story.sessions[0], date(2026, 1, 5), clinician)
    latest = add_photo(story, story.sessions[1], date(2026, 2, 2), clinician)

    response = clinician_client.get(report_url(story.patient))

    assert photo_srcs(response) == [
        reverse("photo", args=[before.pk]),
        reverse("photo", args=[latest.pk]),
    ]
    text = text_of(response)
    assert "Before: 5 Jan 2026" in text and "Latest: 2 Feb 2026" in text
    assert clinician_client.get(photo_srcs(response)[0]).status_code == 200


def test_photos_are_left_out_without_consent_on_the_day_taken(clinician, clinician_client, story):
    add_photo(story, story.sessions[0], date(2026, 1, 5), clinician)
    assert photo_srcs(clinician_client.get(report_url(story.patient))) == []  # no consent

    photography_consent(story.patient, signed_on=date(2026, 1, 2), withdrawn_on=date(2026, 1, 4))
    photography_consent(story.patient, signed_on=date(2026, 1, 6))  # signed after the photo
    assert photo_srcs(clinician_client.get(report_url(story.patient))) == []


def test_a_photo_taken_while_consent_was_in_force_stays_after_withdrawal(
    clinician, clinician_client, story
):
    photography_consent(story.patient, withdrawn_on=date(2026, 1, 20))
    kept = add_photo(story, story.sessions[0], date(2026, 1, 5), clinician)
    add_photo(story, story.sessions[1], date(2026, 2, 2), clinician)  # after withdrawal

    response = clinician_client.get(report_url(story.patient))

    assert photo_srcs(response) == [reverse("photo", args=[kept.pk])]
    assert "Latest:" not in text_of(response)


def test_pdf_embeds_photos_inline_as_data_uris(clinician, clinician_client, story):
    photography_consent(story.patient)
    add_photo(story, story.sessions[0], date(2026, 1, 5), clinician)

    report = build_report(story.patient, embed_photos=True)
    (site,) = report.sites
    # A report-sized JPEG copy, not the stored original (issue 11).
    assert site.photos.before.src.startswith("data:image/jpeg;base64,")
    assert site.photos.latest is None

    response = clinician_client.get(reverse("patient_report_pdf", args=[story.patient.pk]))
    assert response.status_code == 200
    assert len(pdf_images(response)) == 1
    assert "Before: 5 Jan 2026" in pdf_text(response)


def test_pdf_has_no_photo_without_consent(clinician, clinician_client, story):
    add_photo(story, story.sessions[0], date(2026, 1, 5), clinician)

    response = clinician_client.get(reverse("patient_report_pdf", args=[story.patient.pk]))

    assert response.status_code == 200
    assert pdf_images(response) == set()


# --- the sessions CSV ----------------------------------------------------------------------


def csv_rows(response):
    assert response.content.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_sessions_csv_has_a_header_and_a_row_per_session_treatment(clinician_client, story):
    response = clinician_client.get(
        reverse("plan_sessions_csv", args=[story.patient.pk, story.plan.pk])
    )

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "private" in response["Cache-Control"]
    assert response["Content-Disposition"] == (
        f'attachment; filename="cicatrix-{RECORD}-plan-{story.plan.pk}-sessions.csv"'
    )
    header, *rows = csv_rows(response)
    assert header == [
        "date",
        "time",
        "status",
        "clinician",
        "treatment",
        "session n of m",
        "parameters",
        "scores",
        "adverse events",
    ]
    assert rows == [
        [
            "2026-01-05",
            "09:00",
            "Completed",
            "Clin_User",
            "Cryotherapy",
            "1 of 4",
            "method=spray; cycles=2; seconds=15",
            "Upper back Vancouver Scar Scale=7",
            "Blistering",
        ],
        [
            "2026-02-02",
            "09:00",
            "Completed",
            "Clin_User",
            "Cryotherapy",
            "2 of 4",
            "method=spray; cycles=2; seconds=15",
            "Upper back Vancouver Scar Scale=5",
            "Hyperpigmentation",
        ],
        # The appointment book assigns every booked visit its clinician (issue 9).
        ["2026-03-02", "09:00", "Scheduled", "Clin_User", "Cryotherapy", "3 of 4", "", "", ""],
        ["2026-03-30", "09:00", "Scheduled", "Clin_User", "Cryotherapy", "4 of 4", "", "", ""],
    ]


def test_sessions_csv_has_a_row_for_each_treatment_of_a_combined_session(
    clinician, clinician_client
):
    patient = PatientFactory()
    cheek = ScarSiteFactory(patient=patient, body_site="left_cheek", scar_types=["rolling"])
    plan = make_plan(
        user=clinician,
        sites=[cheek],
        courses=[
            course("microneedling", 2, every=42),
            course("chemical_peel", 1, default_parameters={"agent": "glycolic"}),
        ],
    )

    header, *rows = csv_rows(
        clinician_client.get(reverse("plan_sessions_csv", args=[patient.pk, plan.pk]))
    )

    assert [(r[0], r[4], r[5]) for r in rows] == [
        ("2026-01-05", "Microneedling", "1 of 2"),
        ("2026-01-05", "Chemical peel", "1 of 1"),
        ("2026-02-16", "Microneedling", "2 of 2"),
    ]
    assert rows[1][6] == "agent=glycolic"


FORMULA = '=HYPERLINK("http://evil.example","open me")'


@pytest.mark.parametrize("start", ["=", "+", "-", "@"])
def test_sessions_csv_neutralises_cells_that_start_like_a_formula(
    clinician, clinician_client, story, start
):
    """Names and parameter entries come from the database and may start with anything."""
    first = story.sessions[0]
    row = first.treatments.get()
    # A key written straight to the database, outside the treatment's definitions.
    row.parameters = {f"{start}cmd|' /C calc'!A0": "x"}
    row.save()
    clinician.first_name = f"{start}SUM(1,2)"
    clinician.save()
    Treatment.objects.filter(code="cryotherapy").update(name=f"{start}Cryo")

    _, done, *_ = csv_rows(
        clinician_client.get(reverse("plan_sessions_csv", args=[story.patient.pk, story.plan.pk]))
    )

    assert done[3] == f"'{start}SUM(1,2)"
    assert done[4] == f"'{start}Cryo"
    assert done[6] == f"'{start}cmd|' /C calc'!A0=x"


def test_sessions_csv_keeps_a_formula_typed_as_a_parameter_value_inert(clinician, clinician_client):
    patient = PatientFactory()
    cheek = ScarSiteFactory(patient=patient, body_site="left_cheek", scar_types=["rolling"])
    plan = make_plan(user=clinician, sites=[cheek], courses=[course("microneedling", 1)])
    session = plan.sessions.get()
    row = session.treatments.get()
    log_session(
        session,
        clinician,
        parameters={row.pk: {"device": FORMULA, "needle_depth": 1, "passes": 2}},
    )

    _, logged = csv_rows(
        clinician_client.get(reverse("plan_sessions_csv", args=[patient.pk, plan.pk]))
    )

    assert logged[6] == f"device={FORMULA}; needle_depth=1; passes=2"
    assert all(not cell.startswith(("=", "+", "-", "@")) for cell in logged)


# --- cost: queries and rendering time --------------------------------------------------------

LONG_PLANS = [
    # body site, scar type, treatment, first day
    ("upper_back", "hypertrophic", "cryotherapy", date(2024, 1, 8)),
    ("chest", "hypertrophic", "pulsed_dye_laser", date(2024, 1, 15)),
    ("left_cheek", "rolling", "microneedling", date(2024, 1, 22)),
]


def history(clinician, *, plans, sessions, done):
    """A patient with `plans` plans of `sessions` sessions each, `done` of them logged with a
    VSS and a pain score (and a photo on the first and last logged), an adverse event on the
    first, a safety override and photography consent."""
    patient = PatientFactory()
    photography_consent(patient, signed_on=date(2023, 12, 1))
    for body_site, scar_type, code, start in LONG_PLANS[:plans]:
        site = ScarSiteFactory(patient=patient, body_site=body_site, scar_types=[scar_type])
        baseline(site, "vss", 12, user=clinician, on=start)
        plan = make_plan(
            user=clinician,
            sites=[site],
            courses=[course(code, sessions, every=28)],
            start=start,
            internal_notes="Internal",
        )
        logged = sessions_of(plan)[:done]
        for n, session in enumerate(logged):
            photos = []
            if n in (0, done - 1):
                image = SimpleUploadedFile(f"p{n}.png", tiny_png(), content_type="image/png")
                photos = [PhotoInput(site, image)]
            log_session(
                session,
                clinician,
                scores=[(site, "vss", max(12 - n, 0)), (site, "pain", n % 11)],
                events=[AdverseEventInput("erythema", "mild", scar_site=site)] if n == 0 else [],
                photos=photos,
                notes=f"Session {n + 1} went well.",
            )
        SafetyOverride.objects.create(
            session=logged[0],
            treatment=treatment(code),
            rule="keloid_history",
            finding="Keloid history.",
            reason="Discussed.",
            overridden_by=clinician,
        )
    return patient


def timed_queries(client, url):
    """(number of queries, seconds) of one request."""
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = client.get(url)
        seconds = time.perf_counter() - started
    assert response.status_code == 200
    return len(queries), seconds


def test_report_queries_are_the_same_for_6_sessions_as_for_3_plans_of_20(
    request, clinician, clinician_client
):
    small = history(clinician, plans=1, sessions=6, done=4)
    large = history(clinician, plans=3, sessions=20, done=18)
    assert Session.objects.filter(patient=large).count() == 60
    assert Assessment.objects.filter(patient=large, session__isnull=False).count() == 2 * 54
    timed_queries(clinician_client, report_url(small))  # warm-up: per-process caches

    counts, seconds = {}, {}
    for size, patient in (("small", small), ("large", large)):
        for copy in ("staff", "patient"):
            counts[size, copy], seconds[size, copy] = timed_queries(
                clinician_client, report_url(patient, copy=copy)
            )
        counts[size, "pdf"], seconds[size, "pdf"] = timed_queries(
            clinician_client, reverse("patient_report_pdf", args=[patient.pk])
        )

    for key in ("staff", "patient", "pdf"):
        assert counts["small", key] == counts["large", key], key
    assert counts["large", "staff"] < 25
    # Measured, not printed: pytest --junitxml=... -o junit_family=legacy shows them.
    request.node.user_properties += [
        *((f"queries_{key}", counts["large", key]) for key in ("staff", "patient", "pdf")),
        ("large_html_seconds", round(seconds["large", "staff"], 3)),
        ("large_pdf_seconds", round(seconds["large", "pdf"], 3)),
        ("small_pdf_seconds", round(seconds["small", "pdf"], 3)),
    ]
    assert seconds["large", "staff"] < 3
    assert seconds["large", "pdf"] < 30


def test_a_long_history_report_draws_every_score(clinician, clinician_client):
    large = history(clinician, plans=3, sessions=20, done=18)

    response = clinician_client.get(reverse("patient_report", args=[large.pk]))

    html = response.content.decode()
    assert html.count('class="trend-chart"') == 3 * 2  # three sites, VSS and pain each
    assert html.count('class="point"') == 3 * (1 + 18) + 3 * 18  # VSS has a baseline
    assert len(photo_srcs(response)) == 3 * 2  # first and latest photo of each site
    text = text_of(response)
    assert "18 of 20 sessions done, 2 left" in text
    assert "Baseline 12 → latest 0 : -12 points (-100%), better" in text
