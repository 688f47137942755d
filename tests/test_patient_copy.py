"""The patient's copy as a handover document (issue 13.1-13.3) and the aftercare sheet."""

import html as html_lib
import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from clinic.models import Letterhead
from patients.demo import record_number, stories
from patients.models import Patient
from plans import charts
from plans.models import Plan, SafetyOverride, Session, Treatment, TreatmentParameter
from plans.patient_copy import fraction_words
from plans.report_views import _report_context, patient_copy_pdf
from plans.safety import RULES

pytestmark = pytest.mark.django_db

STORY = record_number(1)  # DEMO-00001, the demo's story patient with the most history


@pytest.fixture
def demo():
    call_command("seed_demo", patients=14, force=True, stdout=io.StringIO())
    return Patient.objects.get(record_number=STORY)


def text(html):
    html = html[html.index('<article class="report') : html.index("</article>")]
    return html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def patient_copy_html(client, patient):
    response = client.get(reverse("patient_report", args=[patient.pk]) + "?copy=patient")
    assert response.status_code == 200
    return response.content.decode()


def internal_words(patient):
    """What a patient must never read on their copy: plan titles and citations, course labels
    of staff, parameter codes and the labels patients are not shown, rule names and codes,
    staff notes of every kind."""
    plans = Plan.objects.filter(patient=patient).prefetch_related("courses__treatment")
    words = {"Rana", "Staff copy", "points ("}
    for plan in plans:
        words.add(plan.title)
        words.update(n for n in [plan.internal_notes] if n)
        for course in plan.courses.all():
            names = {course.treatment.name, course.treatment.name_for_patients}
            if course.label and course.label not in names:
                words.add(course.label)
    words.update(
        n for n in Session.objects.filter(patient=patient).values_list("notes", flat=True) if n
    )
    words.update(
        SafetyOverride.objects.filter(session__patient=patient).values_list("reason", flat=True)
    )
    words.update(t for t in Treatment.objects.values_list("staff_notes", flat=True) if t)
    for parameter in TreatmentParameter.objects.all():
        if "_" in parameter.code:
            words.add(parameter.code)
        if not parameter.patient_wording:
            words.add(f" {parameter.label} ")
    for rule in RULES.values():
        words.update({rule.code, rule.title})
    words.add(patient.record_number)
    return words


def test_no_story_patients_copy_holds_an_internal_word(demo, clinician_client):
    checked = 0
    for n, _ in enumerate(stories(timezone.localdate()), start=1):
        patient = Patient.objects.get(record_number=record_number(n))
        page = text(patient_copy_html(clinician_client, patient))
        leaks = sorted(w for w in internal_words(patient) if w in page)
        assert not leaks, f"{patient.record_number}: {leaks}"
        checked += 1
    assert checked >= 10
    # The list is not empty words: the staff copy of the story patient holds several of them.
    story = Patient.objects.get(record_number=STORY)
    staff = text(clinician_client.get(reverse("patient_report", args=[story.pk])).content.decode())
    assert len([w for w in internal_words(story) if w in staff]) >= 3


def test_the_patient_copy_carries_the_letterhead_and_the_next_appointment(demo, clinician_client):
    head = Letterhead.objects.get(location=None)
    page = text(patient_copy_html(clinician_client, demo))
    assert head.clinic_name in page and head.phone in page and head.address in page
    upcoming = (
        Session.objects.filter(patient=demo, status="scheduled", scheduled_at__gte=timezone.now())
        .select_related("location")
        .order_by("scheduled_at")
        .first()
    )
    assert upcoming is not None
    when = timezone.localtime(upcoming.scheduled_at)
    assert f"{when:%A} {when.day} {when:%B %Y} {when:%H:%M}" in page
    assert upcoming.location.name in page
    assert "What happens next" in page


def test_a_sites_own_letterhead_heads_its_patients_copy(demo, clinician_client):
    upcoming = (
        Session.objects.filter(patient=demo, status="scheduled", scheduled_at__gte=timezone.now())
        .order_by("scheduled_at")
        .first()
    )
    Letterhead.objects.filter(location=upcoming.location).delete()
    Letterhead.objects.create(location=upcoming.location, clinic_name="Branch of Somewhere")
    assert "Branch of Somewhere" in text(patient_copy_html(clinician_client, demo))


def test_plain_words_for_treatments_parameters_and_change(demo, clinician_client):
    page = text(patient_copy_html(clinician_client, demo))
    assert "Cryotherapy (freezing), 2 freeze cycles" in page
    assert "Freeze-thaw cycles" not in page and "pH" not in page and "Frost level" not in page
    assert re.search(r"improved by about (a|an|two|three|half)[a-z ]* since you started", page)
    assert re.search(r"the score went from \d+ to \d+ \(\d+% lower", page), "the number stays"
    assert "What this score means:" in page
    assert "Never put lemon juice or baking soda on your skin" in page
    assert "Before a visit" in page and "After a visit" in page


def test_fraction_words():
    assert fraction_words(0.25) == "about a quarter"
    assert fraction_words(0.26) == "about a quarter"
    assert fraction_words(0.5) == "about half"
    assert fraction_words(0.04) == "a little"
    assert fraction_words(1.0) == "completely"
    assert fraction_words(-0.34) == "about a third"


def test_a_score_with_one_point_is_a_number_not_a_chart(demo, clinician_client):
    context = _report_context(None, demo, staff=False)
    single = [
        item for item in context["pc"].sites if item.main is not None and len(item.main.points) < 2
    ]
    charted = [item for item in context["pc"].sites if item.main and len(item.main.points) > 1]
    html = patient_copy_html(clinician_client, demo)
    assert charted, "the story patient has charts"
    assert html.count('class="trend-chart"') == len(charted)
    for item in single:
        assert "One score so far" in item.sentence


def test_report_page_offers_the_patient_pdf_as_its_own_action(demo, clinician_client):
    html = clinician_client.get(reverse("patient_report", args=[demo.pk])).content.decode()
    assert 'id="download-patient-pdf"' in html and ">Patient report (PDF)<" in html
    assert ">Staff report (PDF)<" in html


# --- the PDF ---------------------------------------------------------------------------------


def test_story_patients_pdf_is_tagged_titled_and_at_most_four_pages(demo):
    name, pdf = patient_copy_pdf(demo)
    reader = PdfReader(io.BytesIO(pdf))
    root = reader.trailer["/Root"]
    assert root["/MarkInfo"]["/Marked"] is True or root["/MarkInfo"]["/Marked"] == True  # noqa: E712
    assert "/StructTreeRoot" in root
    assert root["/Lang"] == "en"
    assert root["/ViewerPreferences"]["/DisplayDocTitle"]
    assert reader.metadata.title == f"Your scar treatment progress: {demo.full_name}"
    assert len(reader.pages) <= 4, f"{len(reader.pages)} pages"


def test_pdf_text_reads_in_order(demo):
    _, pdf = patient_copy_pdf(demo)
    words = re.sub(
        r"\s+", " ", " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    )
    headings = [
        "Your scar treatment progress",
        "What happens next",
        "Your treatment plan",
        "How your scars have changed",
        "Treatments you have had",
        "Side effects",
        "Looking after your skin",
    ]
    places = [words.find(h) for h in headings]
    assert -1 not in places, dict(zip(headings, places, strict=True))
    assert places == sorted(places)


def test_chart_text_prints_at_8_points_or_more(demo):
    """Measured on the laid-out document: each chart's printed width times its font size."""
    from django.template.loader import render_to_string
    from weasyprint import HTML

    context = _report_context(None, demo, pdf=True, staff=False)
    document = HTML(string=render_to_string("reports/report_pdf.html", context)).render()
    widths = []

    def walk(box):
        element = getattr(box, "element", None)
        if element is not None and element.tag.endswith("svg") and box.width:
            widths.append(box.width)  # CSS px, 96 per inch
        for child in getattr(box, "children", []):
            walk(child)

    for page in document.pages:
        walk(page._page_box)
    assert widths, "the story patient's copy has charts"
    smallest_pt = min(widths) / charts.WIDTH * charts.FONT * 72 / 96
    assert smallest_pt >= 8, f"chart text prints at {smallest_pt:.1f} pt"


def test_a_photo_pair_stays_on_the_page_of_its_site(demo):
    from django.template.loader import render_to_string
    from weasyprint import HTML

    context = _report_context(None, demo, pdf=True, staff=False)
    assert any(item.photos for item in context["pc"].sites), "the story patient has photos"
    document = HTML(string=render_to_string("reports/report_pdf.html", context)).render()
    pages_of = {}

    def walk(box, page_no):
        element = getattr(box, "element", None)
        cls = (element.get("class") or "") if element is not None else ""
        if "pc-site" in cls.split():
            pages_of.setdefault(id(element), set()).add(page_no)
        for child in getattr(box, "children", []):
            walk(child, page_no)

    for n, page in enumerate(document.pages):
        walk(page._page_box, n)
    assert pages_of and all(len(pages) == 1 for pages in pages_of.values())


# --- the aftercare sheet -----------------------------------------------------------------------


def test_aftercare_sheet_for_todays_visit_on_one_page(demo, clinician_client):
    session = (
        Session.objects.filter(patient=demo, status="completed", treatments__isnull=False)
        .order_by("-scheduled_at")
        .first()
    )
    page = clinician_client.get(reverse("session_aftercare", args=[session.pk]))
    assert page.status_code == 200
    words = text(page.content.decode())
    row = session.treatments.select_related("treatment").first()
    assert row.treatment.name_for_patients in words
    for line in row.treatment.aftercare_advice.splitlines()[:2]:
        assert line.strip() in words
    assert Letterhead.objects.get(location=None).phone in words or "Call us" in words
    pdf = clinician_client.get(reverse("session_aftercare_pdf", args=[session.pk]))
    assert pdf["Content-Type"] == "application/pdf"
    assert len(PdfReader(io.BytesIO(pdf.content)).pages) == 1


def test_front_desk_gets_no_aftercare_sheet(demo, front_desk_client):
    session = Session.objects.filter(patient=demo).first()
    assert front_desk_client.get(reverse("session_aftercare", args=[session.pk])).status_code == 403


def test_the_session_log_links_the_aftercare_sheet(demo, clinician_client):
    session = (
        Session.objects.filter(
            patient=demo,
            status="scheduled",
            scheduled_at__date__lte=timezone.localdate() + timedelta(0),
        )
        .order_by("scheduled_at")
        .first()
    )
    if session is None:
        session = Session.objects.filter(patient=demo, status="completed").first()
        url = reverse("session_detail", args=[session.pk])
    else:
        url = reverse("session_log", args=[session.pk])
    html = clinician_client.get(url).content.decode()
    assert reverse("session_aftercare", args=[session.pk]) in html
