from django import forms
from django.contrib import admin
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from clinic.admin_tools import (
    ArchivableAdmin,
    ArchivedFilter,
    ClinicalAdmin,
    GuardedChangelistMixin,
    NoDeleteInline,
)
from patients.audit import record_access
from patients.forms import next_record_number
from patients.models import (
    NAME_ORDER,
    SEARCH_ORDER,
    AcneActivity,
    Consent,
    MedicalFlag,
    Patient,
    PatientImport,
    RecordAccess,
    RecordNumberFormat,
    ScarSite,
    ScarType,
    _parse_date,
)


class MedicalFlagInline(NoDeleteInline, admin.TabularInline):
    model = MedicalFlag
    fields = ("kind", "started_on", "ended_on", "detail")


class AcneActivityInline(NoDeleteInline, admin.TabularInline):
    model = AcneActivity
    fields = ("recorded_on", "level", "note")
    ordering = ("-recorded_on",)


class ConsentInline(NoDeleteInline, admin.TabularInline):
    model = Consent
    fields = ("kind", "signed_on", "withdrawn_on", "expires_on", "scanned_file")


class ScarSiteInline(NoDeleteInline, admin.TabularInline):
    model = ScarSite
    fields = ("body_site", "scar_types", "description", "first_recorded_on")
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("scar_types")


@admin.register(Patient)
class PatientAdmin(ArchivableAdmin):
    list_display = (
        "last_name",
        "first_name",
        "record_number",
        "date_of_birth",
        "fitzpatrick_type",
        "scar_site_count",
        "archived",
    )
    list_display_links = ("last_name", "first_name", "record_number")
    list_filter = (ArchivedFilter, "fitzpatrick_type", "sex", "scar_sites__scar_types")
    search_fields = ("last_name", "first_name", "record_number", "email", "phone")
    search_help_text = "Name, record number, date of birth (YYYY-MM-DD or DD/MM/YYYY), e-mail."
    # By the expressions the search compares: a search goes through the trigram indexes
    # (migration 0007), the list without one reads patient_list_order_idx (patients.models
    # NAME_ORDER and SEARCH_ORDER say why the two differ).
    ordering = NAME_ORDER
    readonly_fields = ("archived_at", "access_log")
    inlines = [MedicalFlagInline, AcneActivityInline, ConsentInline, ScarSiteInline]
    fieldsets = (
        (None, {"fields": ("record_number", ("first_name", "last_name"), "date_of_birth", "sex")}),
        ("Contact", {"fields": ("phone", "email", "address")}),
        ("Skin and medical", {"fields": ("fitzpatrick_type", "other_allergies", "medications")}),
        ("Record", {"fields": ("archived_at", "created_at", "updated_at", "access_log")}),
    )
    csv_fields = (
        "record_number",
        "last_name",
        "first_name",
        "date_of_birth",
        "sex",
        "fitzpatrick_type",
        "phone",
        "email",
        "archived_at",
    )

    def get_queryset(self, request):
        # A count per patient on the page, not a GROUP BY over patient x scar site.
        sites = (
            ScarSite.objects.filter(patient=OuterRef("pk"))
            .order_by()
            .values("patient")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(_sites=Coalesce(Subquery(sites, output_field=IntegerField()), 0))
        )

    def get_ordering(self, request):
        return SEARCH_ORDER if request.GET.get("q", "").strip() else NAME_ORDER

    def get_search_results(self, request, queryset, search_term):
        unfiltered = queryset
        queryset, duplicates = super().get_search_results(request, queryset, search_term)
        born = _parse_date(search_term.strip())
        if born:
            queryset |= unfiltered.filter(date_of_birth=born)
        return queryset, duplicates

    @admin.display(description="scar sites", ordering="_sites")
    def scar_site_count(self, patient):
        return patient._sites

    # --- access log (issue 11.9) ---
    @admin.display(description="access log")
    def access_log(self, patient):
        if patient.pk is None:
            return "-"
        url = reverse("admin:patients_recordaccess_changelist") + f"?patient={patient.pk}"
        return format_html('<a href="{}">Who opened this record, and when</a>', url)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # Opening a patient here shows the whole record: it goes in the access log too.
        if change and obj is not None and request.method == "GET":
            record_access(request, obj, RecordAccess.What.ADMIN)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def history_view(self, request, object_id, extra_context=None):
        # Past versions show every value the record ever had: a read like the change page.
        response = super().history_view(request, object_id, extra_context)
        self._log_history_read(request, object_id, response)
        return response

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        response = super().history_form_view(request, object_id, version_id, extra_context)
        self._log_history_read(request, object_id, response)
        return response

    def _log_history_read(self, request, object_id, response):
        if request.method != "GET" or response.status_code != 200:
            return
        patient = self.get_object(request, object_id)
        if patient is not None:
            record_access(request, patient, RecordAccess.What.ADMIN)


@admin.register(ScarSite)
class ScarSiteAdmin(ArchivableAdmin):
    list_display = ("patient", "body_site", "scar_type_names", "first_recorded_on", "archived")
    list_filter = (ArchivedFilter, "body_site", "scar_types")
    search_fields = ("patient__last_name", "patient__first_name", "patient__record_number")
    autocomplete_fields = ("patient",)
    list_select_related = ("patient",)
    filter_horizontal = ("scar_types",)
    ordering = ("patient__last_name", "body_site")
    readonly_fields = ("archived_at",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("scar_types")

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "scar_types":
            kwargs["widget"] = admin.widgets.forms.CheckboxSelectMultiple
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.display(description="scar types")
    def scar_type_names(self, site):
        return ", ".join(t.name for t in site.scar_types.all())


class PatientRecordAdmin(ClinicalAdmin):
    """Records that belong to one patient: searched and picked by patient."""

    search_fields = ("patient__last_name", "patient__first_name", "patient__record_number")
    autocomplete_fields = ("patient",)
    list_select_related = ("patient",)


@admin.register(MedicalFlag)
class MedicalFlagAdmin(PatientRecordAdmin):
    list_display = ("patient", "kind", "started_on", "ended_on", "detail")
    list_filter = ("kind",)
    ordering = ("patient__last_name", "kind", "-started_on")
    readonly_fields = ("recorded_by",)

    def save_model(self, request, obj, form, change):
        obj.recorded_by = obj.recorded_by or request.user
        super().save_model(request, obj, form, change)


@admin.register(AcneActivity)
class AcneActivityAdmin(PatientRecordAdmin):
    list_display = ("patient", "recorded_on", "level", "note")
    list_filter = ("level",)
    date_hierarchy = "recorded_on"
    ordering = ("-recorded_on",)
    readonly_fields = ("recorded_by",)

    def save_model(self, request, obj, form, change):
        obj.recorded_by = obj.recorded_by or request.user
        super().save_model(request, obj, form, change)


@admin.register(Consent)
class ConsentAdmin(PatientRecordAdmin):
    list_display = ("patient", "kind", "signed_on", "withdrawn_on")
    list_filter = ("kind", ("withdrawn_on", admin.EmptyFieldListFilter))
    ordering = ("patient__last_name", "kind")


@admin.register(ScarType)
class ScarTypeAdmin(GuardedChangelistMixin, admin.ModelAdmin):
    list_display = ("name", "code", "group", "description")
    search_fields = ("name", "code")
    ordering = ("order",)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


class RecordNumberFormatForm(forms.ModelForm):
    digits = forms.IntegerField(
        min_value=3,
        max_value=10,
        error_messages={
            "min_value": "A record number has from 3 to 10 digits.",
            "max_value": "A record number has from 3 to 10 digits.",
        },
        help_text="How many digits the number has, zero-padded (3 to 10).",
    )

    class Meta:
        model = RecordNumberFormat
        fields = ("prefix", "digits")

    def clean_prefix(self):
        # Record numbers are stored in capitals (the registration form makes them so).
        return self.cleaned_data["prefix"].strip().upper()


@admin.register(RecordNumberFormat)
class RecordNumberFormatAdmin(GuardedChangelistMixin, SimpleHistoryAdmin):
    """One row: how the registration form makes the next record number. Every change is kept
    in its history (who and when); numbers already given are never changed."""

    form = RecordNumberFormatForm
    list_display = ("__str__", "prefix", "digits", "next_number")
    list_display_links = ("__str__",)
    fields = ("prefix", "digits", "next_number")
    readonly_fields = ("next_number",)
    show_full_result_count = False

    @admin.display(description="next number offered")
    def next_number(self, row):
        """What registration offers next with this format (as saved)."""
        if row.pk is None:
            return "Shown once the format is saved."
        return next_record_number(row.prefix.upper(), row.digits)

    def has_add_permission(self, request):
        # Until the first save the defaults (CX-, 6 digits) apply: saving the first row is
        # changing the format, so whoever may change it may do that once.
        if RecordNumberFormat.objects.exists():
            return False
        return super().has_add_permission(request) or self.has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False


# --- access log (issue 11.9) -----------------------------------------------------------------


class AccessPatientFilter(admin.SimpleListFilter):
    """One patient's rows (?patient=<id>, as linked from the patient's page), without listing
    every patient in the sidebar."""

    title = "patient"
    parameter_name = "patient"

    def _pk(self):
        value = self.value() or ""
        return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None

    def lookups(self, request, model_admin):
        if self.value() is None:
            return []
        patient = Patient.objects.filter(pk=self._pk()).first() if self._pk() else None
        return [(self.value(), str(patient) if patient else "unknown patient")]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return queryset.filter(patient_id=self._pk()) if self._pk() else queryset.none()


@admin.register(RecordAccess)
class RecordAccessAdmin(GuardedChangelistMixin, admin.ModelAdmin):
    """The access log, read-only for everyone, superusers included: rows come only from the
    views that show a record (patients.audit.record_access)."""

    list_display = ("at", "user", "patient", "what", "object_id", "ip", "path")
    list_filter = (AccessPatientFilter, "what", "user")
    list_select_related = ("user", "patient")
    search_fields = (
        "patient__record_number",
        "patient__last_name",
        "patient__first_name",
        "user__username",
    )
    search_help_text = "Record number, patient's name or staff username."
    ordering = ("-at", "-id")
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- patient imports (issue 14.3) --------------------------------------------------------------


@admin.register(PatientImport)
class PatientImportAdmin(GuardedChangelistMixin, admin.ModelAdmin):
    """The record of every CSV import, read-only: imports are made on the staff pages
    (/patients/import/) or with `manage.py import_patients`, never here."""

    list_display = (
        "uploaded_at",
        "file_name",
        "uploaded_by",
        "source",
        "status",
        "row_count",
        "new_count",
        "duplicate_count",
        "refused_count",
        "excluded_count",
        "imported_at",
    )
    list_filter = ("status", "source")
    list_select_related = ("uploaded_by", "imported_by")
    search_fields = ("file_name", "uploaded_by__username")
    ordering = ("-uploaded_at", "-id")
    show_full_result_count = False
    # The file's bytes and the per-row results stay on the import's own page.
    exclude = ("content", "results", "mapping")
    readonly_fields = (
        "uploaded_by",
        "uploaded_at",
        "source",
        "file_name",
        "sha256",
        "encoding",
        "delimiter",
        "row_count",
        "version",
        "status",
        "checked_at",
        "new_count",
        "duplicate_count",
        "refused_count",
        "excluded_count",
        "imported_at",
        "imported_by",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).defer("content", "results")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
