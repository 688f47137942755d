from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import csrf_protect_m
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Concat, NullIf, Trim
from django.http import HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.text import Truncator
from simple_history.admin import SimpleHistoryAdmin

from clinic.admin_tools import (
    ClinicalAdmin,
    GuardedChangelistMixin,
    NoDeleteInline,
    ReadOnlyInline,
)
from plans import rule_governance, safety
from plans.models import (
    AdverseEvent,
    Amendment,
    Assessment,
    Course,
    Plan,
    PlanTemplate,
    PlanTemplateCourse,
    Reminder,
    ReportDelivery,
    ReportLinkOpening,
    ReportPhotoChoice,
    SafetyOverride,
    SafetyRuleSetting,
    Session,
    SessionPhoto,
    SessionTreatment,
    Treatment,
    TreatmentParameter,
    VisitType,
)
from plans.services import session_mark_missed

PATIENT_SEARCH = ("patient__last_name", "patient__first_name", "patient__record_number")


# --- catalogue -----------------------------------------------------------------------------


class TreatmentParameterInline(NoDeleteInline, admin.TabularInline):
    model = TreatmentParameter
    fields = (
        "order",
        "code",
        "label",
        "kind",
        "unit",
        "min_value",
        "max_value",
        "choices",
        "required",
        "patient_wording",
        "patient_values",
    )


@admin.register(Treatment)
class TreatmentAdmin(ClinicalAdmin):
    list_display = (
        "name",
        "setting",
        "category",
        "needs_clear_skin",
        "default_course",
        "min_interval_days",
        "best_for_names",
        "is_active",
    )
    list_filter = ("is_active", "setting", "category", "needs_clear_skin", "best_for")
    search_fields = ("name", "code")
    ordering = ("name",)
    inlines = [TreatmentParameterInline]
    prepopulated_fields = {"code": ("name",)}
    fieldsets = (
        (None, {"fields": ("name", "code", "setting", "category", "is_active")}),
        (
            "Safety",
            {"fields": ("needs_clear_skin", "peel_depth", "contains_salicylate")},
        ),
        (
            "Usual course",
            {
                "fields": (
                    "best_for",
                    "default_sessions",
                    "default_interval_days",
                    "min_interval_days",
                )
            },
        ),
        ("Text", {"fields": ("description", "staff_notes")}),
        (
            "For patients",
            {
                "description": "Plain words on the patient's report, aftercare sheet and "
                "reminders. No citations or internal titles.",
                "fields": (
                    "patient_name",
                    "patient_description",
                    "preparation_advice",
                    "aftercare_advice",
                    "home_care_advice",
                ),
            },
        ),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("best_for")

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "best_for":
            kwargs["widget"] = admin.widgets.forms.CheckboxSelectMultiple
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.display(description="default course")
    def default_course(self, treatment):
        if treatment.default_sessions == 1:
            return "1 session"
        return f"{treatment.default_sessions} x every {treatment.default_interval_days} days"

    @admin.display(description="best for")
    def best_for_names(self, treatment):
        return ", ".join(t.name for t in treatment.best_for.all())


class SafetyRuleSettingForm(forms.ModelForm):
    """A change to a rule's action, on/off or window needs a written reason; nothing else does."""

    GOVERNED = ("action", "enabled", "window")
    window = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=32767,
        help_text="The rule's time window, in the unit shown below; empty: the rule's default.",
    )

    class Meta:
        model = SafetyRuleSetting
        fields = ("action", "enabled", "window", "change_reason")
        widgets = {"change_reason": forms.Textarea(attrs={"rows": 3})}
        help_texts = {
            "change_reason": "Required when the action, on/off or window changes; kept in the "
            "rule's history with your name and the time.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.before = rule_governance.Choice(
            self.instance.action, self.instance.enabled, self.instance.window
        )
        if not self.is_bound:
            # Each change gets its own reason; the last one is shown beside the form.
            self.initial["change_reason"] = ""
            # Back from the confirmation page: the values the user had entered.
            self.initial.update(getattr(self.instance, "_pending", {}))

    def after(self):
        """The governed values as submitted (the current ones where a field did not validate)."""
        data = self.cleaned_data
        return rule_governance.Choice(
            data.get("action", self.before.action),
            data.get("enabled", self.before.enabled),
            data.get("window", self.before.window),
        )

    def changes_rule(self):
        return self.after() != self.before

    def clean_window(self):
        window = self.cleaned_data.get("window")
        rule = safety.RULES.get(self.instance.rule)
        if window is not None and window != self.before.window and rule and not rule.window_unit:
            raise forms.ValidationError("This rule has no time window: leave it empty.")
        return window

    def clean(self):
        cleaned = super().clean()
        if not self.changes_rule():
            # Nothing governed changed: the reason of the last change stays the rule's reason.
            cleaned["change_reason"] = self.instance.change_reason
        elif not cleaned.get("change_reason"):
            self.add_error(
                "change_reason",
                "The “reason for the change” is required when the action, on/off or window "
                "changes.",
            )
        return cleaned


# The name User.__str__ shows, for a changelist column without a query per row.
_USER_NAME = Coalesce(
    NullIf(
        Trim(Concat("history_user__first_name", Value(" "), "history_user__last_name")),
        Value(""),
    ),
    "history_user__username",
)


@admin.register(SafetyRuleSetting)
class SafetyRuleSettingAdmin(ClinicalAdmin):
    """A rule changes on its own page, with a written reason and after a confirmation page that
    says what will no longer be checked; never by ticking boxes in the list."""

    form = SafetyRuleSettingForm
    list_display = (
        "rule",
        "action",
        "enabled",
        "window",
        "window_unit",
        "last_reason",
        "changed_by",
        "changed_at",
    )
    list_filter = ("action", "enabled")
    search_fields = ("rule",)
    ordering = ("rule",)
    fields = (
        "rule",
        "description",
        "action",
        "enabled",
        "window",
        "window_unit",
        "last_change",
        "change_reason",
    )
    readonly_fields = ("rule", "description", "window_unit", "last_change")
    history_list_display = ["action", "enabled", "window", "change_reason"]
    confirmation_template = "admin/plans/safetyrulesetting/confirm_change.html"

    def has_add_permission(self, request):
        return False  # one row per rule in plans.safety, created by migration

    def get_queryset(self, request):
        latest = SafetyRuleSetting.history.filter(id=OuterRef("pk")).order_by(
            "-history_date", "-history_id"
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                _changed_at=Subquery(latest.values("history_date")[:1]),
                _changed_by=Subquery(latest.annotate(who=_USER_NAME).values("who")[:1]),
            )
        )

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            obj._pending = getattr(request, "_rule_pending", {})
        return obj

    @csrf_protect_m
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and object_id is not None:
            response = self._before_saving(request, object_id, form_url, extra_context)
            if response is not None:
                return response
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _before_saving(self, request, object_id, form_url, extra_context):
        """The confirmation page, or the form again on cancel; None: the admin goes on as usual
        (errors shown, a confirmed or empty change saved, 403 and 404 answered)."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_change_permission(request, obj):
            return None
        fields = flatten_fieldsets(self.get_fieldsets(request, obj))
        form = self.get_form(request, obj, change=True, fields=fields)(request.POST, instance=obj)
        valid = form.is_valid()
        if "_cancel" in request.POST:
            if valid:
                request._rule_pending = {
                    name: form.cleaned_data[name] for name in (*form.GOVERNED, "change_reason")
                }
            request.method = "GET"  # show the form, save nothing
            return super().changeform_view(request, object_id, form_url, extra_context)
        if not valid or not form.changes_rule():
            return None
        after = form.after()
        if request.POST.get("confirmed") == rule_governance.fingerprint(form.before, after):
            return None
        return self._confirmation(request, obj, form, after)

    def _confirmation(self, request, obj, form, after):
        rule = safety.RULES.get(obj.rule)
        unit = rule.window_unit if rule else ""
        before = form.before

        def window(value):
            return "the rule's default" if value is None else f"{value} {unit}".strip()

        request.current_app = self.admin_site.name
        context = {
            **self.admin_site.each_context(request),
            "title": "Confirm the change to a safety rule",
            "subtitle": obj.get_rule_display(),
            "opts": self.opts,
            "original": obj,
            "rule_title": obj.get_rule_display(),
            "rule_description": rule.description if rule else "",
            "rows": [
                ("Action", before.action, after.action),
                ("Checked", _yes_no(before.enabled), _yes_no(after.enabled)),
                ("Window", window(before.window), window(after.window)),
            ],
            "consequences": rule_governance.consequences(obj.rule, before, after),
            "reason": form.cleaned_data["change_reason"],
            "posted": [
                (name, value)
                for name, values in request.POST.lists()
                if name not in ("csrfmiddlewaretoken", "confirmed", "_confirm", "_cancel")
                for value in values
            ],
            "fingerprint": rule_governance.fingerprint(before, after),
            "asked_again": "confirmed" in request.POST,
        }
        return TemplateResponse(request, self.confirmation_template, context)

    def save_model(self, request, obj, form, change):
        if change and not form.changes_rule():
            if form.data.get("change_reason", "").strip():
                self.message_user(
                    request,
                    "Nothing in the rule changed, so the reason was not recorded.",
                    messages.INFO,
                )
            return  # no save, so no history row that records no change
        super().save_model(request, obj, form, change)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method == "POST":
            # Reverting to an old version would skip the reason and the confirmation.
            return HttpResponseNotAllowed(["GET"])
        return super().history_form_view(request, object_id, version_id, extra_context)

    @admin.display(description="unit")
    def window_unit(self, setting):
        rule = safety.RULES.get(setting.rule)
        return rule.window_unit if rule else ""

    @admin.display(description="what it checks")
    def description(self, setting):
        rule = safety.RULES.get(setting.rule)
        return rule.description if rule else ""

    @admin.display(description="reason for the last change")
    def last_reason(self, setting):
        return Truncator(setting.change_reason).chars(80)

    @admin.display(description="changed by")
    def changed_by(self, setting):
        return getattr(setting, "_changed_by", None)

    @admin.display(description="changed", ordering="_changed_at")
    def changed_at(self, setting):
        return getattr(setting, "_changed_at", None)

    @admin.display(description="last change")
    def last_change(self, setting):
        when = getattr(setting, "_changed_at", None)
        if when is None:
            return setting.change_reason or "-"
        stamp = timezone.localtime(when).strftime("%Y-%m-%d %H:%M")
        who = getattr(setting, "_changed_by", None) or "unknown"
        return f"{stamp} by {who}: {setting.change_reason or '(no reason recorded)'}"


def _yes_no(value):
    return "yes" if value else "no"


# --- plans ---------------------------------------------------------------------------------


def _session_count(condition):
    """The number of the plan's sessions that meet `condition`, as a correlated subquery."""
    sessions = (
        Session.objects.filter(condition, plan=OuterRef("pk"))
        .order_by()
        .values("plan")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(sessions, output_field=IntegerField()), 0)


class CourseInline(NoDeleteInline, admin.TabularInline):
    model = Course
    fields = ("order", "treatment", "label", "sessions_count", "interval_days", "offset_days")
    autocomplete_fields = ("treatment",)


class PlanSessionInline(ReadOnlyInline, admin.TabularInline):
    model = Session
    fields = ("scheduled_at", "status", "clinician", "completed_at")
    readonly_fields = fields
    ordering = ("scheduled_at",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("clinician", "patient")


@admin.register(Plan)
class PlanAdmin(ClinicalAdmin):
    list_display = ("title", "patient", "clinician", "status", "start_date", "progress")
    list_filter = (
        "status",
        ("start_date", admin.DateFieldListFilter),
        "clinician",
        "courses__treatment",
        "target_sites__scar_types",
    )
    search_fields = ("title", *PATIENT_SEARCH)
    autocomplete_fields = ("patient", "clinician", "target_sites")
    list_select_related = ("patient", "clinician")
    ordering = ("-start_date",)
    inlines = [CourseInline, PlanSessionInline]
    csv_fields = ("patient__record_number", "patient", "title", "status", "start_date", "clinician")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                # One small count per plan on the page, not a GROUP BY over plan x session.
                _done=_session_count(Q(status=Session.Status.COMPLETED)),
                _all=_session_count(~Q(status=Session.Status.CANCELLED)),
            )
        )

    @admin.display(description="sessions done")
    def progress(self, plan):
        return f"{plan._done} of {plan._all}"


# --- sessions ------------------------------------------------------------------------------


class SessionTreatmentInline(NoDeleteInline, admin.TabularInline):
    model = SessionTreatment
    fields = ("treatment", "course", "number", "parameters")
    autocomplete_fields = ("treatment",)
    raw_id_fields = ("course",)

    def get_queryset(self, request):
        # The course's label names its treatment.
        return super().get_queryset(request).select_related("course__treatment")


class AssessmentInline(NoDeleteInline, admin.TabularInline):
    model = Assessment
    fields = ("scar_site", "instrument", "assessed_on", "assessor", "items", "total")
    readonly_fields = ("total",)
    autocomplete_fields = ("scar_site", "assessor")


class AdverseEventInline(NoDeleteInline, admin.TabularInline):
    model = AdverseEvent
    fields = ("kind", "severity", "scar_site", "onset_on", "resolved_on", "notes", "recorded_by")
    autocomplete_fields = ("scar_site", "recorded_by")


class SessionPhotoInline(NoDeleteInline, admin.TabularInline):
    model = SessionPhoto
    fields = ("scar_site", "image", "taken_on", "view", "caption", "taken_by")
    autocomplete_fields = ("scar_site", "taken_by")


class SafetyOverrideInline(ReadOnlyInline, admin.TabularInline):
    model = SafetyOverride
    fields = ("rule", "treatment", "finding", "reason", "overridden_by", "overridden_at")
    readonly_fields = fields


class SessionAdminForm(forms.ModelForm):
    """A correction in the admin may not double-book anyone either (SQLite has no exclusion
    constraint; on PostgreSQL this gives the message before the database refuses)."""

    class Meta:
        model = Session
        fields = "__all__"  # noqa: DJ007 - the admin's fieldsets choose; this adds a check

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("scheduled_at"), cleaned.get("ends_at")
        if not (start and end and end > start) or cleaned.get("status") not in Session.HOLDS_TIME:
            return cleaned
        from plans import booking, diary

        av = diary.load(None, diary.local_day(start), diary.local_day(end))
        slot = booking.Slot(
            start,
            end,
            getattr(cleaned.get("clinician"), "pk", None),
            getattr(cleaned.get("room"), "pk", None),
            getattr(cleaned.get("device"), "pk", None),
        )
        patient = getattr(cleaned.get("patient"), "pk", None)
        ignore = [self.instance.pk] if self.instance.pk else []
        clashes = [
            p
            for p in booking.problems(av, slot, patient=patient, ignore=ignore)
            if p.code == "clash"
        ]
        if clashes:
            raise forms.ValidationError([p.message for p in clashes])
        return cleaned


@admin.register(Session)
class SessionAdmin(ClinicalAdmin):
    form = SessionAdminForm
    list_display = (
        "scheduled_at",
        "ends_at",
        "patient",
        "kind",
        "plan",
        "treatment_names",
        "status",
        "clinician",
        "location",
        "room",
    )
    list_filter = (
        "status",
        ("scheduled_at", admin.DateFieldListFilter),
        "kind",
        "location",
        "clinician",
        "treatments__treatment",
    )
    search_fields = PATIENT_SEARCH
    autocomplete_fields = ("patient", "clinician", "plan")
    list_select_related = ("patient", "plan__patient", "clinician", "location", "room__location")
    ordering = ("-scheduled_at",)
    readonly_fields = ("completed_at",)
    inlines = [
        SessionTreatmentInline,
        AssessmentInline,
        AdverseEventInline,
        SessionPhotoInline,
        SafetyOverrideInline,
    ]
    actions = ["mark_missed", "export_csv"]
    csv_fields = (
        "scheduled_at",
        "patient__record_number",
        "patient",
        "plan",
        "status",
        "clinician",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("treatments__treatment")

    @admin.display(description="treatments")
    def treatment_names(self, session):
        return ", ".join(row.treatment.name for row in session.treatments.all())

    @admin.action(description="Mark selected sessions as missed", permissions=["change"])
    def mark_missed(self, request, queryset):
        marked = 0
        for session in queryset.filter(status=Session.Status.SCHEDULED):
            session_mark_missed(session=session, user=request.user)
            marked += 1
        skipped = queryset.count() - marked
        self.message_user(request, f"Marked {marked} session(s) as missed.", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"{skipped} session(s) were not scheduled and were left as they are.",
                messages.WARNING,
            )


@admin.register(Assessment)
class AssessmentAdmin(ClinicalAdmin):
    list_display = ("assessed_on", "patient", "scar_site", "instrument", "total", "session")
    list_filter = (
        "instrument",
        ("assessed_on", admin.DateFieldListFilter),
        "scar_site__scar_types",
        "scar_site__body_site",
    )
    search_fields = PATIENT_SEARCH
    autocomplete_fields = ("patient", "scar_site", "session", "assessor")
    list_select_related = ("patient", "scar_site", "session__patient")
    ordering = ("-assessed_on", "-id")
    readonly_fields = ("total",)
    csv_fields = (
        "assessed_on",
        "patient__record_number",
        "scar_site",
        "instrument",
        "total",
        "items",
    )


class ResolvedFilter(admin.SimpleListFilter):
    title = "resolved"
    parameter_name = "resolved"

    def lookups(self, request, model_admin):
        return [("no", "Unresolved"), ("yes", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(resolved_on__isnull=True)
        if self.value() == "yes":
            return queryset.filter(resolved_on__isnull=False)
        return queryset


@admin.register(AdverseEvent)
class AdverseEventAdmin(ClinicalAdmin):
    list_display = ("onset_on", "patient", "kind", "severity", "scar_site", "resolved_on")
    list_filter = (ResolvedFilter, "kind", "severity")
    search_fields = PATIENT_SEARCH
    autocomplete_fields = ("patient", "session", "scar_site", "recorded_by")
    list_select_related = ("patient", "scar_site")
    date_hierarchy = "onset_on"
    ordering = ("-onset_on",)


@admin.register(SessionPhoto)
class SessionPhotoAdmin(ClinicalAdmin):
    list_display = ("taken_on", "patient", "scar_site", "view", "caption")
    list_filter = ("scar_site__body_site",)
    search_fields = tuple(f"session__{field}" for field in PATIENT_SEARCH)
    autocomplete_fields = ("session", "scar_site", "taken_by")
    list_select_related = ("session__patient", "scar_site")
    date_hierarchy = "taken_on"
    ordering = ("-taken_on",)

    @admin.display(description="patient", ordering="session__patient__last_name")
    def patient(self, photo):
        return photo.session.patient


@admin.register(ReportPhotoChoice)
class ReportPhotoChoiceAdmin(ClinicalAdmin):
    """Chosen on the photo comparison page, where consent is checked; here only read."""

    list_display = ("scar_site", "before", "after", "chosen_by", "chosen_at")
    search_fields = tuple(f"scar_site__{field}" for field in PATIENT_SEARCH)
    list_select_related = ("scar_site__patient", "before", "after", "chosen_by")
    ordering = ("-chosen_at",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SafetyOverride)
class SafetyOverrideAdmin(ClinicalAdmin):
    """Overrides are evidence: shown, never edited."""

    list_display = ("overridden_at", "patient", "rule", "treatment", "overridden_by", "reason")
    list_filter = ("rule", "treatment", "overridden_by")
    search_fields = tuple(f"session__{field}" for field in PATIENT_SEARCH)
    list_select_related = ("session__patient", "treatment", "overridden_by")
    date_hierarchy = "overridden_at"
    ordering = ("-overridden_at",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="patient", ordering="session__patient__last_name")
    def patient(self, override):
        return override.session.patient


@admin.register(Amendment)
class AmendmentAdmin(GuardedChangelistMixin, admin.ModelAdmin):
    """Amendments are made on the session page with a reason; here they are only read."""

    list_display = ("amended_at", "patient", "session", "amended_by", "reason")
    list_filter = ("amended_by",)
    search_fields = tuple(f"session__{field}" for field in PATIENT_SEARCH)
    list_select_related = ("session__patient", "amended_by")
    ordering = ("-amended_at",)
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="patient", ordering="session__patient__last_name")
    def patient(self, amendment):
        return amendment.session.patient


@admin.register(TreatmentParameter)
class TreatmentParameterAdmin(ClinicalAdmin):
    list_display = ("treatment", "order", "label", "code", "kind", "unit", "min_value", "max_value")
    list_filter = ("treatment", "kind", "required")
    search_fields = ("label", "code", "treatment__name")
    autocomplete_fields = ("treatment",)
    list_select_related = ("treatment",)
    ordering = ("treatment__name", "order")


@admin.register(Course)
class CourseAdmin(ClinicalAdmin):
    list_display = (
        "plan",
        "patient",
        "treatment",
        "sessions_count",
        "interval_days",
        "offset_days",
    )
    list_filter = ("treatment",)
    search_fields = tuple(f"plan__{field}" for field in PATIENT_SEARCH)
    autocomplete_fields = ("plan", "treatment")
    list_select_related = ("plan__patient", "treatment")
    ordering = ("-plan__start_date", "order")

    @admin.display(description="patient", ordering="plan__patient__last_name")
    def patient(self, course):
        return course.plan.patient


@admin.register(SessionTreatment)
class SessionTreatmentAdmin(ClinicalAdmin):
    list_display = ("session", "treatment", "numbering_display", "parameters")
    list_filter = ("treatment",)
    search_fields = tuple(f"session__{field}" for field in PATIENT_SEARCH)
    autocomplete_fields = ("session", "treatment")
    raw_id_fields = ("course",)
    list_select_related = ("session__patient", "treatment", "course")
    ordering = ("-session__scheduled_at",)

    @admin.display(description="session n of m")
    def numbering_display(self, row):
        return row.numbering


@admin.register(VisitType)
class VisitTypeAdmin(GuardedChangelistMixin, SimpleHistoryAdmin):
    list_display = ("kind", "minutes", "needs_room")

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


# --- the patient's copy sent to the patient, and reminders (issue 13.4, 13.5): read only ----


class _ReadOnlyLog(GuardedChangelistMixin, admin.ModelAdmin):
    """Rows come from the report page and send_reminders; here they are only read."""

    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ReportDelivery)
class ReportDeliveryAdmin(_ReadOnlyLog):
    list_display = (
        "sent_at",
        "patient",
        "how",
        "to_address",
        "sent_by",
        "expires_at",
        "revoked_at",
    )
    list_filter = ("how", "sent_by")
    list_select_related = ("patient", "sent_by")
    search_fields = PATIENT_SEARCH
    ordering = ("-sent_at", "-id")
    # The token's hash and the form token stay out of sight, as a calendar feed's secret does.
    exclude = ("token_hash", "form_token")


@admin.register(ReportLinkOpening)
class ReportLinkOpeningAdmin(_ReadOnlyLog):
    list_display = ("at", "patient", "ip", "user_agent")
    list_select_related = ("delivery__patient",)
    search_fields = tuple(f"delivery__{field}" for field in PATIENT_SEARCH)
    ordering = ("-at", "-id")

    @admin.display(description="patient", ordering="delivery__patient__last_name")
    def patient(self, opening):
        return opening.delivery.patient


@admin.register(Reminder)
class ReminderAdmin(_ReadOnlyLog):
    list_display = ("claimed_at", "patient", "scheduled_at", "to_address", "sent_at")
    list_select_related = ("session__patient",)
    search_fields = tuple(f"session__{field}" for field in PATIENT_SEARCH)
    ordering = ("-claimed_at", "-id")

    @admin.display(description="patient", ordering="session__patient__last_name")
    def patient(self, reminder):
        return reminder.session.patient


# --- plan templates ------------------------------------------------------------------------


class PlanTemplateCourseInline(NoDeleteInline, admin.TabularInline):
    model = PlanTemplateCourse
    fields = (
        "order",
        "treatment",
        "label",
        "sessions_count",
        "interval_days",
        "offset_days",
        "default_parameters",
    )
    autocomplete_fields = ("treatment",)


@admin.register(PlanTemplate)
class PlanTemplateAdmin(ClinicalAdmin):
    """Protocols the builder offers first; a manager retires one by unticking it."""

    list_display = ("name", "days", "is_active", "created_by")
    list_filter = ("is_active",)
    search_fields = ("name",)
    ordering = ("name",)
    list_select_related = ("created_by",)
    readonly_fields = ("created_by",)
    inlines = [PlanTemplateCourseInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("courses")

    @admin.display(description="sessions on")
    def days(self, template):
        return template.summary()

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(PlanTemplateCourse)
class PlanTemplateCourseAdmin(ClinicalAdmin):
    list_display = ("template", "treatment", "sessions_count", "interval_days", "offset_days")
    list_filter = ("template",)
    list_select_related = ("template", "treatment")
    autocomplete_fields = ("treatment",)
