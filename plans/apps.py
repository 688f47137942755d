from django.apps import AppConfig
from django.apps import apps as global_apps
from django.db.models.signals import post_migrate


def _restore_catalogue(sender, apps=None, **kwargs):
    from plans.catalogue import (
        ensure_appointment_defaults,
        ensure_catalogue,
        ensure_patient_texts,
        ensure_visit_types,
    )

    apps = apps or global_apps
    created = ensure_catalogue(apps)
    ensure_appointment_defaults(apps, created)
    ensure_patient_texts(apps, created)
    ensure_visit_types(apps)


class PlansConfig(AppConfig):
    name = "plans"
    verbose_name = "Treatment plans"

    def ready(self):
        # After a flush (transactional tests) the catalogue comes back by itself; on a real
        # database it only adds treatments that are missing, never edits a manager's rows.
        post_migrate.connect(_restore_catalogue, sender=self)
        from plans import outcome_summary

        outcome_summary.connect()
