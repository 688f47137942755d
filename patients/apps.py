from django.apps import AppConfig
from django.apps import apps as global_apps
from django.db.models.signals import post_migrate


def _restore_reference_data(sender, apps=None, **kwargs):
    from patients.reference import ensure_scar_types

    ensure_scar_types(apps or global_apps)


class PatientsConfig(AppConfig):
    name = "patients"
    verbose_name = "Patients"

    def ready(self):
        # After a flush (transactional tests) the reference data comes back by itself.
        post_migrate.connect(_restore_reference_data, sender=self)
