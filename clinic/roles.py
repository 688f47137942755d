"""Staff roles as Django groups, and the one table of what each role may do.

Later features extend ROLE_PERMISSIONS; `migrate` applies the table to the groups.
"""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.core.exceptions import ImproperlyConfigured

FRONT_DESK = "Front desk"
CLINICIAN = "Clinician"
MANAGER = "Manager"
ROLES = (FRONT_DESK, CLINICIAN, MANAGER)

_VIEW = ("view",)
_VIEW_ADD_CHANGE = ("view", "add", "change")


def _perms(app_label, model, actions):
    return {f"{app_label}.{action}_{model}" for action in actions}


_DIARY_SETUP = ("location", "openinghours", "closure", "room", "devicekind", "device")
_DIARY_STAFF = ("workingpattern", "absence")

_FRONT_DESK = (
    # demographics, consents on paper, booking and moving sessions; nothing clinical
    {f"clinic.view_{model}" for model in _DIARY_SETUP + _DIARY_STAFF}
    | _perms("patients", "patient", _VIEW_ADD_CHANGE)
    | _perms("patients", "consent", _VIEW_ADD_CHANGE)
    | _perms("patients", "scarsite", _VIEW)
    | _perms("patients", "scartype", _VIEW)
    | _perms("plans", "treatment", _VIEW)
    | _perms("plans", "plan", _VIEW)
    | _perms("plans", "course", _VIEW)
    | _perms("plans", "session", _VIEW_ADD_CHANGE)
    | _perms("plans", "sessiontreatment", _VIEW)
)
_CLINICIAN = (
    _FRONT_DESK
    | _perms("patients", "acneactivity", _VIEW_ADD_CHANGE)
    | _perms("patients", "medicalflag", _VIEW_ADD_CHANGE)
    | _perms("patients", "scarsite", _VIEW_ADD_CHANGE)
    | _perms("plans", "treatmentparameter", _VIEW)
    | _perms("plans", "safetyrulesetting", _VIEW)
    | _perms("plans", "plantemplate", _VIEW)
    | _perms("plans", "plantemplatecourse", _VIEW)
    | _perms("plans", "plan", _VIEW_ADD_CHANGE)
    | _perms("plans", "course", _VIEW_ADD_CHANGE)
    | _perms("plans", "sessiontreatment", _VIEW_ADD_CHANGE)
    | _perms("plans", "assessment", _VIEW_ADD_CHANGE)
    | _perms("plans", "adverseevent", _VIEW_ADD_CHANGE)
    | _perms("plans", "sessionphoto", _VIEW_ADD_CHANGE)
    | _perms("plans", "reportphotochoice", _VIEW_ADD_CHANGE)  # which photo pair a report shows
    | _perms("plans", "safetyoverride", ("view", "add"))
    | _perms("plans", "amendment", ("view", "add"))  # of the sessions they logged
    | {"plans.override_safety_block", "plans.view_report"}
    | {"plans.send_report"}  # the patient's copy by e-mail or link (issue 13.4)
    | {"patients.export_fhir"}  # the record as a FHIR bundle, for a referral
)
_MANAGER = (
    _CLINICIAN
    | {"patients.archive_patient", "plans.view_outcomes", "plans.book_outside_hours"}
    | {"patients.export_full_record"}  # the patient's full record (subject access request)
    | {"plans.amend_any_session"}
    | _perms("patients", "recordnumberformat", ("view", "change"))
    | {"patients.view_recordaccess"}  # the access log: read-only for everyone (issue 11.9)
    | {f"plans.view_{m}" for m in ("reportdelivery", "reportlinkopening", "reminder")}
    | {"clinic.view_calendarfeed"}  # who has a feed on; the secret link is never shown
    | _perms("clinic", "user", _VIEW_ADD_CHANGE)
    | _perms("auth", "group", _VIEW)
    | _perms("plans", "treatment", _VIEW_ADD_CHANGE)
    | _perms("plans", "treatmentparameter", _VIEW_ADD_CHANGE)
    | _perms("plans", "safetyrulesetting", _VIEW_ADD_CHANGE)
    | _perms("plans", "visittype", _VIEW_ADD_CHANGE)
    | _perms("plans", "plantemplate", _VIEW_ADD_CHANGE)  # protocols offered in the builder
    | _perms("plans", "plantemplatecourse", _VIEW_ADD_CHANGE)
    | _perms("clinic", "letterhead", _VIEW_ADD_CHANGE)  # what heads the patient's documents
    | {f"clinic.{a}_{model}" for model in _DIARY_SETUP + _DIARY_STAFF for a in _VIEW_ADD_CHANGE}
    # Accounts and logins (issue 11.7): "change" grants only the admin's Unlock and Reset
    # authenticator actions; every field of these records is read-only to a manager.
    | _perms("axes", "accessattempt", ("view", "change"))
    | _perms("axes", "accesslog", _VIEW)
    | _perms("axes", "accessfailurelog", _VIEW)
    | _perms("otp_totp", "totpdevice", ("view", "change"))
    # Patients from a CSV file, and the record of each import (issue 14.3).
    | {"patients.import_patients", "patients.view_patientimport"}
)

# Nobody but a superuser deletes anything: clinical records are archived instead.
ROLE_PERMISSIONS: dict[str, set[str]] = {
    FRONT_DESK: _FRONT_DESK,
    CLINICIAN: _CLINICIAN,
    MANAGER: _MANAGER,
}


def permission_objects(codes, Permission):
    """Map 'app_label.codename' strings to Permission rows; unknown codes are an error."""
    wanted = {tuple(code.split(".", 1)) for code in codes}
    found = {
        (p.content_type.app_label, p.codename): p
        for p in Permission.objects.select_related("content_type").filter(
            codename__in={codename for _, codename in wanted}
        )
    }
    missing = sorted(f"{a}.{c}" for a, c in wanted - found.keys())
    if missing:
        raise ImproperlyConfigured(f"ROLE_PERMISSIONS names unknown permissions: {missing}")
    return [found[key] for key in wanted]


def sync_roles(apps=global_apps):
    """Create the role groups and give each exactly the permissions of the table."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(permission_objects(ROLE_PERMISSIONS[role], Permission))


def sync_after_migrate(sender, apps=global_apps, verbosity=1, using="default", **kwargs):
    """post_migrate hook: make sure every app's permissions exist, then sync the groups."""
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using, apps=apps)
    sync_roles(apps)


def staff_follows_manager_group(sender, instance, action, reverse, pk_set, **kwargs):
    """Managers get admin access (is_staff); leaving the Manager group takes it away."""
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    User = global_apps.get_model("clinic", "User")
    if reverse:  # group.user_set changed: instance is the Group
        if instance.name != MANAGER:
            return
        users = User.objects.filter(pk__in=pk_set or ()) if action != "post_clear" else None
        if users is None:
            User.objects.filter(is_superuser=False, is_staff=True).exclude(
                groups__name=MANAGER
            ).update(is_staff=False)
            return
    else:
        users = [instance]
    for user in users:
        wanted = user.is_superuser or user.groups.filter(name=MANAGER).exists()
        if user.is_staff != wanted:
            user.is_staff = wanted
            user.save(update_fields=["is_staff"])
