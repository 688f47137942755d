"""The patient's copy of the progress report: the staff report's facts in plain words.

`build_patient_copy` takes a `reports.Report` built with staff=False and adds what a patient
reads: the letterhead of the site that treats them, each treatment's name and parameters in
the catalogue's wording for patients (citations, plan titles and course labels stay on the
staff copy), each score's change as words ("improved by about a quarter") with its numbers,
the next appointments with date, time and place, and the catalogue's advice for the plan's
treatments. No queries beyond the letterhead's: everything else is in the report already.
"""

from dataclasses import dataclass, field

from clinic.models import Letterhead
from clinic.timeutils import day_start
from plans import scales
from plans.models import Session
from plans.reports import Report, Series

# Fractions a person says, for a change of a score.
FRACTIONS = (
    (0.10, "a tenth"),
    (0.20, "a fifth"),
    (0.25, "a quarter"),
    (1 / 3, "a third"),
    (0.40, "two fifths"),
    (0.50, "half"),
    (0.60, "three fifths"),
    (2 / 3, "two thirds"),
    (0.75, "three quarters"),
    (0.80, "four fifths"),
    (0.90, "nine tenths"),
)
NEXT_APPOINTMENTS = 6  # shown under "What happens next"; the rest are "and n more"


def fraction_words(share: float) -> str:
    """0.26 -> 'about a quarter'; under 7.5 % -> 'a little'; all of it -> 'completely'."""
    share = abs(share)
    if share >= 0.995:
        return "completely"
    if share < 0.075:
        return "a little"
    _, words = min(FRACTIONS, key=lambda pair: abs(pair[0] - share))
    return f"about {words}"


def change_sentence(series: Series) -> str:
    """One score's story since the start, in words with the numbers still given."""
    instrument = series.instrument
    direction = "lower" if instrument.lower_is_better else "higher"
    scale = f"score range {instrument.min_total} to {instrument.max_total}, {direction} is better"
    latest = series.latest
    if series.session_only:
        return session_sentence(series)
    if len(series.points) < 2:
        return (
            f"One score so far: {latest.total} on {latest.assessed_on:%-d %B %Y} ({scale}). "
            "The next scores will show how it responds."
        )
    start, now = series.baseline.total, latest.total
    numbers = f"from {start} to {now}"
    if series.change == 0:
        return f"It has stayed the same since you started: {now} ({scale})."
    percent = (
        f"{abs(series.percent)}% {'lower' if series.change < 0 else 'higher'}; "
        if (series.percent is not None)
        else ""
    )
    share = abs(series.change) / start if start else 1
    if series.verdict == "better":
        return (
            f"It has improved by {fraction_words(share)} since you started: the score went "
            f"{numbers} ({percent}{scale})."
        )
    return (
        f"It is {fraction_words(share)} worse than when you started: the score went {numbers} "
        f"({percent}{scale}). Your clinician will talk this through with you."
    )


def session_sentence(series: Series) -> str:
    """A rating given at each visit (improvement, pain): its latest value, in words."""
    latest, code = series.latest, series.instrument.code
    when = f"at the visit on {latest.assessed_on:%-d %B %Y}"
    if code.startswith("gais"):
        words = scales.GAIS_WORDS.get(latest.total, str(latest.total))
        scale = "on a scale from 1, very much improved, to 5, worse"
        return f"{words.capitalize()} {when} ({latest.total} {scale})."
    if code == "pain":
        return f"{latest.total} out of 10 {when}."
    low, high = series.instrument.min_total, series.instrument.max_total
    return f"{latest.total} {when} (score range {low} to {high})."


def short_sentence(series: Series) -> str:
    """A further score of a site, briefly (the main one gets the chart and the long form)."""
    instrument, latest = series.instrument, series.latest
    if series.session_only:
        return session_sentence(series)
    better = "lower is better" if instrument.lower_is_better else "higher is better"
    scale = f"{instrument.min_total} to {instrument.max_total}, {better}"
    if len(series.points) < 2:
        return f"{latest.total} on {latest.assessed_on:%-d %B %Y}, the first score ({scale})."
    start, now = series.baseline.total, latest.total
    if series.change == 0:
        return f"{now}, the same as at the start ({scale})."
    share = fraction_words(abs(series.change) / start if start else 1)
    how = f"improved by {share}" if series.verdict == "better" else f"{share} worse"
    return f"{start} at the start, now {now}: {how} ({scale})."


def visit_sentence(series) -> str:
    """The ratings given at the last visit (improvement as judged by each, pain), in one line."""
    if not series:
        return ""
    last = max(s.latest.assessed_on for s in series)
    parts = []
    for s in series:
        if s.latest.assessed_on != last:
            continue
        value, code = s.latest.total, s.instrument.code
        if code.startswith("gais"):
            words = scales.GAIS_WORDS.get(value, str(value))
            parts.append(
                f"improvement {s.instrument.plain_name.split('(')[-1].rstrip(')')}: {words}"
            )
        elif code == "pain":
            parts.append(f"pain {value} out of 10")
        else:
            parts.append(f"{s.instrument.plain_name.lower()} {value}")
    return f"{last:%-d %B %Y}: " + "; ".join(parts) + "."


@dataclass
class PatientSite:
    site: object
    kinds: str
    main: Series | None
    sentence: str
    others: list  # (plain name, sentence)
    photos: object


@dataclass
class Appointment:
    session: Session
    what: str
    place: str


@dataclass
class Advice:
    name: str
    description: str
    before: list[str]
    after: list[str]
    at_home: list[str]


@dataclass
class PatientCopy:
    report: Report
    letterhead: Letterhead
    headline: str
    sites: list[PatientSite]
    plans: list  # (summary, plain title, [course lines])
    treatments_had: list  # (session, [lines])
    appointments: list[Appointment]
    more_appointments: int
    places: list  # (name, address) of the sites the appointments are at
    advice: list[Advice] = field(default_factory=list)
    advice_for_all: list[str] = field(default_factory=list)  # lines several treatments share


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def treatment_line(row) -> str:
    """'Cryotherapy (freezing), 2 freeze cycles': the catalogue's words for patients."""
    words = [row.treatment.name_for_patients]
    for definition in row.treatment.parameters.all():
        if definition.code in row.parameters:
            phrase = definition.for_patients(row.parameters[definition.code])
            if phrase:
                words.append(phrase)
    return ", ".join(words)


def course_line(course) -> str:
    name = course.treatment.name_for_patients
    count = course.sessions_count
    if count == 1:
        return f"{name}: 1 session"
    days = course.interval_days
    if days % 7 == 0:
        weeks = days // 7
        every = "every week" if weeks == 1 else f"about every {weeks} weeks"
    else:
        every = f"about every {days} days"
    return f"{name}: {count} sessions, {every}"


def plan_title(courses) -> str:
    """'Microneedling and Chemical peel': the treatments, never the staff's plan title."""
    names = list(dict.fromkeys(c.treatment.name_for_patients for c in courses))
    if not names:
        return "Your treatment plan"
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]


def _main_series(series):
    """The score with the most points (ties: display order), which gets the chart."""
    scored = [s for s in series if not s.session_only]
    return max(scored, key=lambda s: len(s.points), default=None)


def _headline(sites) -> str:
    shares = []
    for item in sites:
        s = item.main
        if s is None or len(s.points) < 2 or not s.baseline.total:
            continue
        gain = -s.change if s.instrument.lower_is_better else s.change
        shares.append(gain / s.baseline.total)
    if not shares:
        return (
            "Your first scores are recorded. The next report will show how your scars respond "
            "to treatment."
        )
    mean = sum(shares) / len(shares)
    areas = "1 area" if len(shares) == 1 else f"{len(shares)} areas"
    percent = f"{round(abs(mean) * 100)}%"
    if mean > 0:
        return (
            f"Your scars have improved by {fraction_words(mean)} since you started "
            f"({percent} on average over {areas})."
        )
    if mean < 0:
        return (
            f"Your scars' scores are {fraction_words(mean)} worse than when you started "
            f"({percent} on average over {areas}). Your clinician will talk this through with you."
        )
    return "Your scars' scores are the same as when you started."


def _upcoming(report):
    """The report's booked sessions from today on; for the whole-patient report, every
    appointment (a review or a patch test too), since the patient is coming to all of them."""
    if report.plan is not None:
        return report.upcoming
    return list(
        Session.objects.filter(
            patient=report.patient,
            status=Session.Status.SCHEDULED,
            scheduled_at__gte=day_start(report.generated_on),
        )
        .select_related("location")
        .prefetch_related("treatments__treatment")
        .order_by("scheduled_at", "pk")
    )


def build_patient_copy(report: Report) -> PatientCopy:
    if report.staff:
        raise ValueError("The patient copy is built from a report made with staff=False.")
    sites = []
    for item in report.sites:
        main = _main_series(item.series)
        others = [
            (s.instrument.plain_name, short_sentence(s))
            for s in item.series
            if s is not main and not s.session_only
        ]
        visit = visit_sentence([s for s in item.series if s.session_only])
        if visit:
            others.append(("At the last visit", visit))
        kinds = ", ".join(t.name.lower() for t in item.site.scar_types.all())
        sites.append(
            PatientSite(
                site=item.site,
                kinds=kinds,
                main=main,
                sentence=change_sentence(main) if main else "",
                others=others,
                photos=item.photos,
            )
        )
    plans = [
        (summary, plan_title(summary.courses), [course_line(c) for c in summary.courses])
        for summary in report.plans
    ]
    treatments_had = [
        (session, [treatment_line(row) for row in session.treatments.all()])
        for session in report.sessions_done
    ]
    upcoming = _upcoming(report)
    appointments = [
        Appointment(
            session,
            " + ".join(r.treatment.name_for_patients for r in session.treatments.all())
            or session.get_kind_display(),
            session.location.name if session.location else "",
        )
        for session in upcoming[:NEXT_APPOINTMENTS]
    ]
    places = {
        s.location.name: s.location.address for s in upcoming[:NEXT_APPOINTMENTS] if s.location
    }
    # The letterhead of the site that treats the patient next, else the last one they visited.
    visited = [s for s in report.sessions_done if s.location_id]
    site = (upcoming[0].location_id if upcoming else None) or (
        visited[-1].location_id if visited else None
    )
    seen, advice = set(), []
    for summary in report.plans:
        for course in summary.courses:
            treatment = course.treatment
            if treatment.pk in seen:
                continue
            seen.add(treatment.pk)
            advice.append(
                Advice(
                    treatment.name_for_patients,
                    treatment.patient_description,
                    lines(treatment.preparation_advice),
                    lines(treatment.aftercare_advice),
                    lines(treatment.home_care_advice),
                )
            )
    shared = _shared_lines(advice)
    for item in advice:
        item.before = [line for line in item.before if line not in shared]
        item.after = [line for line in item.after if line not in shared]
        item.at_home = [line for line in item.at_home if line not in shared]
    return PatientCopy(
        report=report,
        letterhead=Letterhead.for_location(site),
        headline=_headline(sites),
        sites=sites,
        plans=plans,
        treatments_had=treatments_had,
        appointments=appointments,
        more_appointments=max(0, len(upcoming) - NEXT_APPOINTMENTS),
        places=list(places.items()),
        advice=advice,
        advice_for_all=sorted(shared, key=list(shared).index),
    )


def _shared_lines(advice) -> dict:
    """Advice lines that more than one treatment gives (sun protection, no lemon juice),
    said once for all of them, in the order they first appear."""
    counts = {}
    for item in advice:
        for line in dict.fromkeys(item.before + item.after + item.at_home):
            counts[line] = counts.get(line, 0) + 1
    return {line: n for line, n in counts.items() if n > 1} if len(advice) > 1 else {}


@dataclass
class AftercareSheet:
    session: Session
    letterhead: Letterhead
    treatments: list[str]
    advice: list[Advice]
    advice_for_all: list[str]
    next_session: Session | None


def build_aftercare_sheet(session: Session) -> AftercareSheet:
    """One page for the patient to take home after today's visit: what was done, in plain
    words, and the catalogue's aftercare and home care for those treatments."""
    rows = list(
        session.treatments.select_related("treatment").prefetch_related("treatment__parameters")
    )
    advice, seen = [], set()
    for row in rows:
        if row.treatment_id in seen:
            continue
        seen.add(row.treatment_id)
        advice.append(
            Advice(
                row.treatment.name_for_patients,
                "",
                [],
                lines(row.treatment.aftercare_advice),
                lines(row.treatment.home_care_advice),
            )
        )
    shared = _shared_lines(advice)
    for item in advice:
        item.after = [line for line in item.after if line not in shared]
        item.at_home = [line for line in item.at_home if line not in shared]
    next_session = (
        Session.objects.filter(
            patient_id=session.patient_id,
            status=Session.Status.SCHEDULED,
            scheduled_at__gt=session.scheduled_at,
        )
        .exclude(pk=session.pk)
        .select_related("location")
        .order_by("scheduled_at", "pk")
        .first()
    )
    return AftercareSheet(
        session=session,
        letterhead=Letterhead.for_location(session.location_id),
        treatments=[treatment_line(row) for row in rows],
        advice=advice,
        advice_for_all=list(shared),
        next_session=next_session,
    )
