"""A patient's record as a FHIR R4 Bundle (type "collection"): data in, a JSON-ready dict out.

Pure: no queries and no request. The caller reads the record with plans.exports.load_records
(every related row already loaded) and passes the clinic's record number system (the setting
FHIR_RECORD_NUMBER_SYSTEM) and the time of the export.

What goes in (README, "FHIR export"): the Patient; a Practitioner per member of staff named;
a Condition per scar site (archived sites included, as inactive); the medical flags as
AllergyIntolerance, MedicationStatement or Condition; a CarePlan per plan with an activity per
course; a Procedure per treatment done in a completed session, with an Observation of its
parameters (UCUM units); an Observation per score; an AdverseEvent per adverse event; a
Consent per consent. Every reference points at a fullUrl of the bundle: "urn:uuid:" and a
UUID5 of the record number system, the resource kind and the row's id, so the same row gets
the same fullUrl in every export and two clinics' exports do not collide.

Codes: SNOMED CT only where the code could be checked against published sources; everything
else is text. The tables below are the whole of it.
"""

import html
import uuid
from datetime import timedelta

from django.utils import timezone

from plans import scales

SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
TERMINOLOGY = "http://terminology.hl7.org/CodeSystem/"

# SNOMED CT codes. The body sites, "Scar", erythema and itching were each found with the same
# meaning in several published sources (FHIR value sets and implementation guides, DICOM
# context groups); 49420001 "Keloid" is the code in common use but was not found in those
# sources: confirm it in a SNOMED CT browser before relying on it (removing the line sends
# keloid as text). A scar type or body site missing here is sent as text only: a wrong code
# is worse than none. 275322007 is "Scar" in general, not hypertrophic scar; no code for
# hypertrophic, atrophic (icepick, boxcar, rolling) or macular scars could be confirmed.
SCAR = ("275322007", "Scar")
SCAR_TYPES = {
    "keloid": ("49420001", "Keloid"),
}
BODY_SITES = {
    "forehead": ("52795006", "Forehead structure"),
    "nose": ("45206002", "Nasal structure"),
    "neck": ("45048000", "Neck structure"),
    "chest": ("51185008", "Thoracic structure"),
    "shoulders": ("16982005", "Shoulder region structure"),
    "arms": ("53120007", "Upper limb structure"),
}
ADVERSE_EVENTS = {
    "erythema": ("247441003", "Erythema"),
    "itching": ("418363000", "Itching"),
}
# The catalogue's units (the manager may add others: those go as text, without a UCUM code).
UCUM_UNITS = {
    "%": "%",
    "mm": "mm",
    "nm": "nm",
    "ms": "ms",
    "s": "s",
    "min": "min",
    "J/cm²": "J/cm2",
    "J/cm2": "J/cm2",
}
CONSENT_DOCUMENT = ("59284-0", "Consent Document")  # LOINC

GENDER = {"F": "female", "M": "male", "X": "unknown"}  # X is "other / not stated"
PLAN_STATUS = {
    "draft": "draft",
    "active": "active",
    "on_hold": "on-hold",
    "completed": "completed",
    "cancelled": "revoked",
}
ALLERGIES = {"salicylate_allergy", "other_allergy"}
MEDICATIONS = {"isotretinoin", "anticoagulant", "medication"}
PATIENT_RATED = {"posas_patient", "gais_patient"}


def full_url(system, kind, key):
    """The fullUrl of a resource (kind, id): the same in every export of the row, distinct
    per clinic (system)."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{system}#{kind}/{key}')}"


def build_bundle(record, *, system, generated_at):
    """The Bundle of one patient's record (plans.exports.PatientRecord) as a dict."""
    return _Builder(record, system).bundle(generated_at)


# --- small helpers -------------------------------------------------------------------------


def _clean(value):
    """Drop empty values (FHIR forbids empty strings, arrays and objects) and trim text;
    0 and false stay. The bundle is plain dicts, lists, str, bool and numbers, so exact type
    checks do: this sees every value of every bundle and is kept lean."""
    if type(value) is dict:
        cleaned = {}
        for key, item in value.items():
            item = _leaf_or_cleaned(item)
            if item is not None:
                cleaned[key] = item
        return cleaned
    return [item for item in map(_leaf_or_cleaned, value) if item is not None]


def _leaf_or_cleaned(item):
    kind = type(item)
    if kind is str:
        return item.strip() or None
    if kind is dict or kind is list:
        return _clean(item) or None
    return item


def _coded(system, code, display=None, text=None):
    return {"coding": [{"system": system, "code": code, "display": display}], "text": text}


def _snomed(pair, text=None):
    code, display = pair
    return _coded(SNOMED, code, display, text)


def _text(text):
    return {"text": text}


def _date(day):
    return day.isoformat() if day else None


def _moment(value):
    """A dateTime in the clinic's zone, to the second ("Z" for UTC, as FHIR tools write it)."""
    if not value:
        return None
    text = timezone.localtime(value).isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _narrative(*lines):
    paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in lines if line)
    return {
        "status": "generated",
        "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{paragraphs}</div>',
    }


def _notes(*texts):
    return [{"text": text} for text in texts if text and text.strip()]


def ordered_parameters(row):
    """(code, definition or None, value) of a session treatment's logged parameters in the
    treatment's own order; a code since removed from the catalogue comes last, by name."""
    definitions = {d.code: d for d in row.treatment.parameters.all()}
    order = {code: i for i, code in enumerate(definitions)}
    items = sorted(row.parameters.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
    return [(code, definitions.get(code), value) for code, value in items]


def body_site(code, label):
    """A scar site's body site: SNOMED CT where the table has it, its name as text always."""
    pair = BODY_SITES.get(code)
    return _snomed(pair, label) if pair else _text(label)


def scar_type(scar):
    pair = SCAR_TYPES.get(scar.code)
    return _snomed(pair, scar.name) if pair else _text(scar.name)


def quantity(value, unit):
    """A number with its unit: UCUM code where known, the unit as written otherwise."""
    result = {"value": value}
    if unit:
        result["unit"] = unit
        if unit in UCUM_UNITS:
            result |= {"system": UCUM, "code": UCUM_UNITS[unit]}
    return result


# --- the bundle ------------------------------------------------------------------------------


class _Builder:
    def __init__(self, record, system):
        self.record = record
        self.patient = record.patient
        self.system = system
        self.entries = []
        self.urls = {}

    def url(self, kind, key):
        """full_url, remembered: a bundle names the patient and its staff many times."""
        try:
            return self.urls[kind, key]
        except KeyError:
            url = self.urls[kind, key] = full_url(self.system, kind, key)
            return url

    def ref(self, kind, key, display=None):
        return {"reference": self.url(kind, key), "display": display}

    def patient_ref(self):
        return self.ref("Patient", f"patient-{self.patient.pk}")

    def practitioner_ref(self, user):
        return self.ref("Practitioner", f"practitioner-{user.pk}", str(user)) if user else None

    def add(self, kind, key, resource):
        """One entry; `key` is the resource's id, e.g. "site-12" (readable, stable)."""
        resource = {"resourceType": kind, "id": key, **resource}
        self.entries.append({"fullUrl": self.url(kind, key), "resource": _clean(resource)})

    def bundle(self, generated_at):
        record = self.record
        self.add_patient()
        for user in sorted(record.practitioners().values(), key=lambda u: u.pk):
            self.add_practitioner(user)
        for site in record.sites:
            self.add_site(site)
        for flag in record.flags:
            self.add_flag(flag)
        for consent in record.consents:
            self.add_consent(consent, generated_at)
        procedures = self.procedures_by_session()
        for plan in record.plans:
            self.add_plan(plan, procedures)
        for session in record.sessions:
            for row in procedures.get(session.pk, []):
                self.add_procedure(session, row)
        for assessment in record.assessments:
            self.add_assessment(assessment, procedures)
        for event in record.adverse_events:
            self.add_adverse_event(event, procedures)
        return {
            "resourceType": "Bundle",
            "id": f"record-{self.patient.pk}",
            "meta": {"lastUpdated": _moment(generated_at)},
            "type": "collection",
            "timestamp": _moment(generated_at),
            "entry": self.entries,
        }

    def procedures_by_session(self):
        """The treatments done: rows of completed sessions (a Procedure each)."""
        return {
            s.pk: list(s.treatments.all())
            for s in self.record.sessions
            if s.status == "completed" and s.treatments.all()
        }

    # --- who --------------------------------------------------------------------------------

    def add_patient(self):
        p = self.patient
        telecom = []
        if p.phone:
            telecom.append({"system": "phone", "value": p.phone})
        if p.email:
            telecom.append({"system": "email", "value": p.email})
        self.add(
            "Patient",
            f"patient-{p.pk}",
            {
                "identifier": [{"use": "usual", "system": self.system, "value": p.record_number}],
                "active": not p.is_archived,
                "name": [
                    {
                        "use": "official",
                        "text": p.full_name,
                        "family": p.last_name,
                        "given": [p.first_name],
                    }
                ],
                "telecom": telecom,
                "gender": GENDER.get(p.sex, "unknown"),
                "birthDate": _date(p.date_of_birth),
                "address": [{"text": p.address}] if p.address.strip() else [],
            },
        )
        if p.fitzpatrick_type:
            self.add(
                "Observation",
                f"fitzpatrick-{p.pk}",
                {
                    "status": "final",
                    "category": [self.observation_category("exam")],
                    "code": _text("Fitzpatrick skin type"),
                    "subject": self.patient_ref(),
                    "valueCodeableConcept": _text(p.get_fitzpatrick_type_display()),
                },
            )
        if p.other_allergies.strip():
            self.add(
                "AllergyIntolerance",
                f"allergies-noted-{p.pk}",
                {
                    "code": _text(p.other_allergies),
                    "patient": self.patient_ref(),
                    "note": _notes("Allergies as noted on the patient's details."),
                },
            )
        if p.medications.strip():
            self.add(
                "MedicationStatement",
                f"medications-noted-{p.pk}",
                {
                    "status": "active",
                    "medicationCodeableConcept": _text(p.medications),
                    "subject": self.patient_ref(),
                    "note": _notes("Current medications as noted on the patient's details."),
                },
            )

    def add_practitioner(self, user):
        self.add(
            "Practitioner",
            f"practitioner-{user.pk}",
            {
                "name": [
                    {
                        "text": str(user),
                        "family": user.last_name,
                        "given": [user.first_name] if user.first_name else [],
                    }
                ],
                "qualification": (
                    [{"code": _text(user.professional_title)}] if user.professional_title else []
                ),
            },
        )

    # --- what is wrong ----------------------------------------------------------------------

    def add_site(self, site):
        types = list(site.scar_types.all())
        # One coded scar type names the condition itself; otherwise "Scar", types as evidence.
        only = SCAR_TYPES.get(types[0].code) if len(types) == 1 else None
        names = ", ".join(t.name for t in types)
        archived = site.archived_at
        self.add(
            "Condition",
            f"site-{site.pk}",
            {
                "clinicalStatus": self.condition_status("inactive" if archived else "active"),
                "verificationStatus": _coded(
                    TERMINOLOGY + "condition-ver-status", "confirmed", "Confirmed"
                ),
                "category": [
                    _coded(
                        TERMINOLOGY + "condition-category", "problem-list-item", "Problem List Item"
                    )
                ],
                "code": _snomed(only or SCAR, f"Acne scars: {names}" if names else "Acne scars"),
                "bodySite": [body_site(site.body_site, site.get_body_site_display())],
                "subject": self.patient_ref(),
                "recordedDate": _date(site.first_recorded_on),
                "evidence": [{"code": [scar_type(t) for t in types]}] if types else [],
                "note": _notes(
                    site.description,
                    f"No longer tracked: archived on {_date(timezone.localdate(archived))}."
                    if archived
                    else "",
                ),
            },
        )

    def condition_status(self, code):
        return _coded(TERMINOLOGY + "condition-clinical", code, code.title())

    def add_flag(self, flag):
        text = flag.get_kind_display() + (f": {flag.detail}" if flag.detail else "")
        ended = flag.ended_on is not None and flag.ended_on < timezone.localdate()
        period = {"start": _date(flag.started_on), "end": _date(flag.ended_on)}
        if flag.kind in ALLERGIES:
            self.add(
                "AllergyIntolerance",
                f"allergy-{flag.pk}",
                {
                    "clinicalStatus": _coded(
                        TERMINOLOGY + "allergyintolerance-clinical",
                        "inactive" if ended else "active",
                    ),
                    "verificationStatus": _coded(
                        TERMINOLOGY + "allergyintolerance-verification", "confirmed", "Confirmed"
                    ),
                    "code": _text(text),
                    "patient": self.patient_ref(),
                    "onsetDateTime": _date(flag.started_on),
                },
            )
        elif flag.kind in MEDICATIONS:
            self.add(
                "MedicationStatement",
                f"medication-{flag.pk}",
                {
                    "status": "completed" if ended else "active",
                    "medicationCodeableConcept": _text(text),
                    "subject": self.patient_ref(),
                    "effectivePeriod": period,
                },
            )
        else:
            self.add(
                "Condition",
                f"flag-{flag.pk}",
                {
                    "clinicalStatus": self.condition_status("resolved" if ended else "active"),
                    "category": [
                        _coded(
                            TERMINOLOGY + "condition-category",
                            "problem-list-item",
                            "Problem List Item",
                        )
                    ],
                    "code": _text(text),
                    "subject": self.patient_ref(),
                    "onsetDateTime": _date(flag.started_on),
                    "abatementDateTime": _date(flag.ended_on) if ended else None,
                },
            )

    def add_consent(self, consent, generated_at):
        today = timezone.localtime(generated_at).date()
        if consent.signed_on > today:
            status = "proposed"
        else:
            status = "active" if consent.in_force_on(today) else "inactive"
        last_day = consent.expires_on
        if consent.withdrawn_on:
            withdrawn = max(consent.withdrawn_on - timedelta(days=1), consent.signed_on)
            last_day = min(last_day, withdrawn) if last_day else withdrawn
        treatment = consent.kind == "treatment"
        self.add(
            "Consent",
            f"consent-{consent.pk}",
            {
                "status": status,
                "scope": _coded(
                    TERMINOLOGY + "consentscope",
                    "treatment" if treatment else "patient-privacy",
                    "Treatment" if treatment else "Privacy Consent",
                ),
                "category": [
                    _coded(LOINC, *CONSENT_DOCUMENT),
                    _text(f"{consent.get_kind_display()} consent"),
                ],
                "patient": self.patient_ref(),
                "dateTime": _date(consent.signed_on),
                "performer": [self.patient_ref()],
                "policyRule": _text("The clinic's signed consent form"),
                "sourceAttachment": (
                    {"title": "Scanned signed form (in the patient's full record)"}
                    if consent.scanned_file
                    else None
                ),
                "provision": {
                    "type": "permit",
                    "period": {"start": _date(consent.signed_on), "end": _date(last_day)},
                },
                "text": _narrative(
                    f"{consent.get_kind_display()} consent signed on {_date(consent.signed_on)}.",
                    f"Withdrawn on {_date(consent.withdrawn_on)}." if consent.withdrawn_on else "",
                    f"Valid to {_date(consent.expires_on)}." if consent.expires_on else "",
                ),
            },
        )

    # --- what was planned and done -----------------------------------------------------------

    def add_plan(self, plan, procedures):
        own = [s for s in self.record.sessions if s.plan_id == plan.pk]
        rows_by_course = {}
        for session in own:
            for row in session.treatments.all():
                rows_by_course.setdefault(row.course_id, []).append((session, row))
        activities = [
            self.activity(plan, course, rows_by_course.pop(course.pk, []), procedures)
            for course in plan.courses.all()
        ]
        for pairs in rows_by_course.values():  # rows outside any course (none in practice)
            activities.append(self.activity(plan, None, pairs, procedures))
        open_sessions = [s for s in own if s.status not in ("cancelled", "missed")]
        self.add(
            "CarePlan",
            f"plan-{plan.pk}",
            {
                "status": PLAN_STATUS.get(plan.status, "unknown"),
                "intent": "plan",
                "title": plan.title,
                "description": plan.goal,
                "subject": self.patient_ref(),
                "period": {
                    "start": _date(plan.start_date),
                    "end": _date(open_sessions[-1].scheduled_on) if open_sessions else None,
                },
                "created": _moment(plan.created_at),
                "author": self.practitioner_ref(plan.clinician),
                "addresses": [
                    self.ref("Condition", f"site-{site.pk}") for site in plan.target_sites.all()
                ],
                "activity": activities,
            },
        )

    def activity(self, plan, course, pairs, procedures):
        treatment = course.treatment if course else pairs[0][1].treatment
        done = [(s, r) for s, r in pairs if s.status == "completed"]
        repeat = {}
        if course:
            repeat = {"count": course.sessions_count}
            if course.sessions_count > 1 and course.interval_days:
                repeat |= {"period": course.interval_days, "periodUnit": "d"}
        return {
            "outcomeReference": [
                self.ref("Procedure", f"procedure-{r.pk}") for s, r in done if s.pk in procedures
            ],
            "detail": {
                "kind": "ServiceRequest",
                "code": _text(treatment.name),
                "status": _activity_status(plan.status, pairs, done),
                "description": str(course) if course else f"{treatment.name} (extra sessions)",
                "scheduledTiming": {
                    "event": [_moment(s.scheduled_at) for s, _ in pairs if s.status != "cancelled"],
                    "repeat": repeat,
                },
                "performer": [self.practitioner_ref(plan.clinician)],
            },
        }

    def add_procedure(self, session, row):
        performer = session.clinician or (session.plan.clinician if session.plan_id else None)
        sites = list(session.plan.target_sites.all()) if session.plan_id else []
        values = self.parameter_values(row)
        self.add(
            "Procedure",
            f"procedure-{row.pk}",
            {
                "status": "completed",
                "code": _text(row.treatment.name),
                "subject": self.patient_ref(),
                "basedOn": [self.ref("CarePlan", f"plan-{session.plan_id}")]
                if session.plan_id
                else [],
                "performedDateTime": _moment(session.scheduled_at),
                "performer": [{"actor": self.practitioner_ref(performer)}] if performer else [],
                "bodySite": [body_site(s.body_site, s.get_body_site_display()) for s in sites],
                "reasonReference": [self.ref("Condition", f"site-{s.pk}") for s in sites],
                "note": _notes(
                    f"Session {row.numbering}." if row.numbering else "",
                    "Parameters: " + "; ".join(f"{label} {shown}" for label, shown, _ in values)
                    if values
                    else "",
                    session.notes,
                    f"Amended on {_date(timezone.localdate(row.amended_at))}; the values before "
                    "are kept in the clinic's record."
                    if row.amended_at
                    else "",
                ),
            },
        )
        if values:
            self.add(
                "Observation",
                f"parameters-{row.pk}",
                {
                    "status": "amended" if row.amended_at else "final",
                    "category": [self.observation_category("procedure")],
                    "code": _text(f"{row.treatment.name}: parameters used"),
                    "subject": self.patient_ref(),
                    "partOf": [self.ref("Procedure", f"procedure-{row.pk}")],
                    "effectiveDateTime": _moment(session.scheduled_at),
                    "performer": [self.practitioner_ref(performer)] if performer else [],
                    "component": [{"code": _text(label), **value} for label, _, value in values],
                },
            )

    def parameter_values(self, row):
        """(label, value as read, FHIR value[x]) in the treatment's own order."""
        values = []
        for code, definition, value in ordered_parameters(row):
            label = definition.label if definition else code
            unit = definition.unit if definition else ""
            if isinstance(value, bool):
                shown, fhir = ("yes" if value else "no"), {"valueBoolean": value}
            elif isinstance(value, int | float):
                shown = f"{value} {unit}".strip()
                fhir = {"valueQuantity": quantity(value, unit)}
            else:
                shown, fhir = str(value), {"valueString": str(value)}
            values.append((label, shown, fhir))
        return values

    # --- how it went ---------------------------------------------------------------------------

    def observation_category(self, code):
        names = {"exam": "Exam", "survey": "Survey", "procedure": "Procedure"}
        return _coded(TERMINOLOGY + "observation-category", code, names[code])

    def add_assessment(self, assessment, procedures):
        instrument = scales.get(assessment.instrument)
        site = assessment.scar_site
        rows = procedures.get(assessment.session_id, []) if assessment.session_id else []
        low, high = instrument.min_total, instrument.max_total
        better = "lower" if instrument.lower_is_better else "higher"
        self.add(
            "Observation",
            f"score-{assessment.pk}",
            {
                "status": "amended" if assessment.amended_at else "final",
                "category": [
                    self.observation_category(
                        "survey" if assessment.instrument in PATIENT_RATED else "exam"
                    )
                ],
                "code": _text(instrument.name),
                "subject": self.patient_ref(),
                "focus": [self.ref("Condition", f"site-{site.pk}")],
                "partOf": [self.ref("Procedure", f"procedure-{r.pk}") for r in rows],
                "effectiveDateTime": _date(assessment.assessed_on),
                "performer": [self.practitioner_ref(assessment.assessor)],
                "valueInteger": assessment.total,
                "referenceRange": [
                    {
                        "low": {"value": low},
                        "high": {"value": high},
                        "text": f"Scale {low} to {high}; {better} is better",
                    }
                ],
                "bodySite": body_site(site.body_site, site.get_body_site_display()),
                "component": [
                    {"code": _text(item.label), "valueInteger": assessment.items[item.code]}
                    for item in instrument.items
                    if item.code in assessment.items
                ],
                "note": _notes(
                    "Baseline score (outside a session)." if assessment.session_id is None else "",
                    assessment.notes,
                ),
            },
        )

    def add_adverse_event(self, event, procedures):
        pair = ADVERSE_EVENTS.get(event.kind)
        kind = event.get_kind_display()
        site = event.scar_site.get_body_site_display() if event.scar_site_id else ""
        self.add(
            "AdverseEvent",
            f"adverse-event-{event.pk}",
            {
                "actuality": "actual",
                "event": _snomed(pair, kind) if pair else _text(kind),
                "subject": self.patient_ref(),
                "date": _date(event.onset_on),
                "detected": _date(event.onset_on),
                "recordedDate": _moment(event.created_at),
                "severity": _coded(
                    TERMINOLOGY + "adverse-event-severity",
                    event.severity,
                    event.get_severity_display(),
                ),
                "outcome": _coded(
                    TERMINOLOGY + "adverse-event-outcome",
                    "resolved" if event.resolved_on else "ongoing",
                    "Resolved" if event.resolved_on else "Ongoing",
                ),
                "recorder": self.practitioner_ref(event.recorded_by),
                "suspectEntity": [
                    {"instance": self.ref("Procedure", f"procedure-{r.pk}")}
                    for r in procedures.get(event.session_id, [])
                ],
                "text": _narrative(
                    f"{kind} ({event.get_severity_display().lower()})"
                    + (f" at the {site.lower()}" if site else "")
                    + f", from {_date(event.onset_on)}.",
                    f"Resolved on {_date(event.resolved_on)}."
                    if event.resolved_on
                    else "Not resolved.",
                    event.notes,
                ),
            },
        )


def _activity_status(plan_status, pairs, done):
    """A course's status from its plan's and its sessions'."""
    if plan_status == "cancelled":
        return "cancelled"
    if plan_status == "on_hold":
        return "on-hold"
    if plan_status == "draft":
        return "not-started"
    wanted = [p for p in pairs if p[0].status not in ("cancelled", "missed")]
    if wanted and len(done) == len(wanted):
        return "completed"
    if plan_status == "completed":
        return "stopped"
    if done:
        return "in-progress"
    return "scheduled" if wanted else "not-started"
