from django.apps import AppConfig
from django.db.models.signals import m2m_changed, post_migrate


class ClinicConfig(AppConfig):
    name = "clinic"
    verbose_name = "Clinic"

    def ready(self):
        from django.conf import settings
        from PIL import Image

        from clinic import lookups, roles

        # Ids past 64 bits match nothing instead of overflowing SQLite (issue 11.4).
        lookups.register()

        # Every image Pillow opens in this process, not only uploads, refuses bombs.
        Image.MAX_IMAGE_PIXELS = settings.UPLOAD_MAX_IMAGE_PIXELS
        from clinic.models import User

        # Runs after every migrate, once all apps' permissions exist, so that a later
        # issue's new permission in roles.ROLE_PERMISSIONS reaches the groups by itself.
        post_migrate.connect(roles.sync_after_migrate, sender=self)
        m2m_changed.connect(roles.staff_follows_manager_group, sender=User.groups.through)
        from django.contrib.auth.signals import user_logged_in

        from clinic.middleware import start_the_idle_clock

        user_logged_in.connect(start_the_idle_clock)
