"""Everything held about patients, read in a fixed number of queries per batch of patients.

`load_records` reads one batch (one patient for a download, a few hundred for
`export_fhir --all`) whatever the number of plans, sessions or scores: each kind of record
is one query for the whole batch, then grouped by patient in Python. `iter_records` walks a
whole queryset of patients in batches, so an export of every patient holds one batch in
memory at a time. The FHIR bundle (plans.fhir) and the full record (plans.full_record)
are built from these records without querying again.
"""

from dataclasses import dataclass, field

from django.db.models import Prefetch

from patients.models import AcneActivity, Consent, MedicalFlag, Patient, RecordAccess, ScarSite
from plans.models import (
    AdverseEvent,
    Amendment,
    Assessment,
    Course,
    Plan,
    ReportDelivery,
    SafetyOverride,
    Session,
    SessionPhoto,
    SessionTreatment,
)

BATCH = 200


@dataclass
class PatientRecord:
    """One patient and every record about them, archived ones included, oldest first."""

    patient: Patient
    flags: list = field(default_factory=list)
    sites: list = field(default_factory=list)  # scar_types prefetched
    consents: list = field(default_factory=list)
    plans: list = field(default_factory=list)  # clinician, courses (treatment), target_sites
    sessions: list = field(default_factory=list)  # clinician; treatments (treatment, course)
    assessments: list = field(default_factory=list)  # assessor
    adverse_events: list = field(default_factory=list)  # recorded_by
    # Only with full=True (the subject access request): the rest of what is held.
    acne: list = field(default_factory=list)
    photos: list = field(default_factory=list)  # taken_by
    amendments: list = field(default_factory=list)  # amended_by
    overrides: list = field(default_factory=list)  # overridden_by, treatment
    deliveries: list = field(default_factory=list)  # sent_by
    accesses: list = field(default_factory=list)  # user

    def practitioners(self):
        """The staff this record names (plans, sessions, scores, adverse events), by id."""
        people = {}
        for plan in self.plans:
            people[plan.clinician_id] = plan.clinician
        for session in self.sessions:
            if session.clinician_id:
                people[session.clinician_id] = session.clinician
        for assessment in self.assessments:
            people[assessment.assessor_id] = assessment.assessor
        for event in self.adverse_events:
            people[event.recorded_by_id] = event.recorded_by
        return people


def load_records(patients, *, full=False):
    """A PatientRecord per patient (Patient rows, in the order given), in a fixed number of
    queries whatever their number or the size of their records: 12 for the FHIR bundle
    (fewer when a kind of record is empty), 18 with `full` (acne records, photos,
    amendments, overrides, reports sent and the access log)."""
    patients = list(patients)
    ids = [p.pk for p in patients]
    records = {p.pk: PatientRecord(patient=p) for p in patients}
    if not ids:
        return []
    for flag in (
        MedicalFlag.objects.filter(patient_id__in=ids)
        .select_related("recorded_by")
        .order_by("started_on", "pk")
    ):
        records[flag.patient_id].flags.append(flag)
    sites = {}
    for site in (
        ScarSite.objects.filter(patient_id__in=ids)
        .prefetch_related("scar_types")
        .order_by("first_recorded_on", "pk")
    ):
        records[site.patient_id].sites.append(site)
        sites[site.pk] = site
    for consent in Consent.objects.filter(patient_id__in=ids).order_by("signed_on", "pk"):
        records[consent.patient_id].consents.append(consent)
    plans = {}
    for plan in (
        Plan.objects.filter(patient_id__in=ids)
        .select_related("clinician", "location")
        .prefetch_related(
            Prefetch("courses", queryset=Course.objects.select_related("treatment")),
            "target_sites",
        )
        .order_by("start_date", "pk")
    ):
        records[plan.patient_id].plans.append(plan)
        plans[plan.pk] = plan
    sessions = {}
    for session in (
        Session.objects.filter(patient_id__in=ids)
        .select_related("clinician", "location", "room")
        .prefetch_related(
            Prefetch(
                "treatments",
                queryset=SessionTreatment.objects.select_related("treatment", "course").order_by(
                    "pk"
                ),
            ),
            "treatments__treatment__parameters",
        )
        .order_by("scheduled_at", "pk")
    ):
        if session.plan_id:
            session.plan = plans[session.plan_id]  # the plan already read, not a query
        records[session.patient_id].sessions.append(session)
        sessions[session.pk] = session
    for assessment in (
        Assessment.objects.filter(patient_id__in=ids)
        .select_related("assessor")
        .order_by("assessed_on", "pk")
    ):
        assessment.scar_site = sites[assessment.scar_site_id]
        records[assessment.patient_id].assessments.append(assessment)
    for event in (
        AdverseEvent.objects.filter(patient_id__in=ids)
        .select_related("recorded_by")
        .order_by("onset_on", "pk")
    ):
        if event.scar_site_id:
            event.scar_site = sites[event.scar_site_id]
        event.session = sessions[event.session_id]
        records[event.patient_id].adverse_events.append(event)
    if full:
        _load_the_rest(records, ids, sites, sessions)
    return [records[pk] for pk in ids]


def _load_the_rest(records, ids, sites, sessions):
    """What only the full record carries: 6 queries."""
    for row in (
        AcneActivity.objects.filter(patient_id__in=ids)
        .select_related("recorded_by")
        .order_by("recorded_on", "pk")
    ):
        records[row.patient_id].acne.append(row)
    for photo in (
        SessionPhoto.objects.filter(session__patient_id__in=ids)
        .select_related("taken_by")
        .order_by("taken_on", "pk")
    ):
        photo.session = sessions[photo.session_id]
        photo.scar_site = sites[photo.scar_site_id]
        records[photo.session.patient_id].photos.append(photo)
    for amendment in (
        Amendment.objects.filter(session__patient_id__in=ids)
        .select_related("amended_by")
        .order_by("amended_at", "pk")
    ):
        amendment.session = sessions[amendment.session_id]
        records[amendment.session.patient_id].amendments.append(amendment)
    for override in (
        SafetyOverride.objects.filter(session__patient_id__in=ids)
        .select_related("overridden_by", "treatment")
        .order_by("overridden_at", "pk")
    ):
        override.session = sessions[override.session_id]
        records[override.session.patient_id].overrides.append(override)
    for delivery in (
        ReportDelivery.objects.filter(patient_id__in=ids)
        .select_related("sent_by", "revoked_by")
        .order_by("sent_at", "pk")
    ):
        records[delivery.patient_id].deliveries.append(delivery)
    for access in (
        RecordAccess.objects.filter(patient_id__in=ids).select_related("user").order_by("at", "pk")
    ):
        records[access.patient_id].accesses.append(access)


def iter_records(patients=None, *, batch=BATCH, full=False):
    """Every patient of the queryset (default: all, archived included) by ascending id, one
    batch of `batch` patients in memory at a time (keyset pages, not OFFSET)."""
    patients = Patient.objects.all() if patients is None else patients
    last = 0
    while True:
        page = list(patients.filter(pk__gt=last).order_by("pk")[:batch])
        if not page:
            return
        yield from load_records(page, full=full)
        last = page[-1].pk
