"""Load the synthetic demo clinic: staff logins, then each app's own demo records.

Idempotent: a second run adds nothing and changes nothing a user entered. Each app that
has demo data provides `<app>/demo.py` with `seed(*, patients, rng, users, stdout)`; the
command finds them through the app registry, so `clinic` never imports `patients` or
`plans` directly.
"""

import importlib
import random
import time
from concurrent.futures import ThreadPoolExecutor

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from clinic import bulkload
from clinic.models import CalendarFeed
from clinic.roles import CLINICIAN, FRONT_DESK, MANAGER, sync_roles

DEMO_PASSWORD = "cicatrix-demo"
DEMO_SEED = 20261122
DEMO_USERS = (
    # username, first, last, title, role
    ("frontdesk", "Fran", "Desk", "Receptionist", FRONT_DESK),
    ("clinician", "Cleo", "Nishan", "Consultant dermatologist", CLINICIAN),
    ("manager", "Morgan", "Ager", "Clinic manager", MANAGER),
)


class Command(BaseCommand):
    help = "Load the synthetic demo clinic (demo logins, patients, plans, sessions)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--patients", type=int, default=60, help="How many demo patients (default 60)."
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even with DEBUG off (creates logins with a published password).",
        )

    def handle(self, *args, patients, force, verbosity=1, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates logins with the published password 'cicatrix-demo' and "
                "refuses to run with DEBUG off. Use --force if this really is a demo server."
            )
        if patients < 0:
            raise CommandError("--patients must be 0 or more.")
        started = time.monotonic()
        # Each login's password hash takes the better part of a second (PBKDF2's work
        # factor): the three are computed at once (hashlib lets go of the GIL), while the
        # roles are set up.
        with ThreadPoolExecutor(len(DEMO_USERS)) as pool:
            hashes = [pool.submit(make_password, DEMO_PASSWORD) for _ in DEMO_USERS]
            with transaction.atomic():
                sync_roles()
                users = self._seed_users([h.result for h in hashes])
        self._timing(verbosity, "roles and logins", started)
        modules = list(self._demo_modules())
        tables = [
            model
            for module in modules
            for model in apps.get_containing_app_config(module.__name__).get_models(
                include_auto_created=True
            )
        ]

        # On PostgreSQL, the tables a fresh load fills get their indexes and constraints
        # once, at the end (clinic/bulkload.py); everywhere, one transaction for the load.
        # A chain-sized load on PostgreSQL builds the first patients and copies them as
        # further units of the chain (plans/demo_scale.py); elsewhere all are built.
        # Outside a caller's transaction the load commits before the builds, which run on two
        # connections of their own with the chain's copies (see bulkload.Build).
        def fresh():
            return not apps.get_model("patients", "Patient").objects.exists()

        with bulkload.indexes_built_after(
            tables, stdout=self.stdout, verbosity=verbosity, fresh=fresh
        ) as build:
            # (Asked here, after indexes_built_after has undone an unfinished load.)
            built, copies = patients, 0
            for module in modules:
                if hasattr(module, "units"):
                    built, copies = module.units(patients)
            for module in modules:
                phase = time.monotonic()
                module.seed(
                    patients=built,
                    rng=random.Random(DEMO_SEED),
                    users=users,
                    stdout=self.stdout,
                )
                self._timing(verbosity, f"{module.__name__}.seed", phase)
            for module in modules:
                if copies and hasattr(module, "replicate"):
                    phase = time.monotonic()
                    module.replicate(
                        copies=copies,
                        built=built,
                        users=users,
                        stdout=self.stdout,
                        later=build.later,
                    )
                    self._timing(verbosity, f"{module.__name__}.replicate", phase)
            phase = time.monotonic()
        self._timing(verbosity, "commit", phase)
        # The bulk load bypasses the signals that keep the outcomes summary current. A chain's
        # copies brought their sessions' summary rows (plans/demo_scale.py): only the sums
        # over them are left to add up.
        from plans import outcome_summary

        summary_started = time.monotonic()
        outcome_summary.rebuild(rows_loaded=copies > 0)
        self.stdout.write(f"Outcomes summary built in {time.monotonic() - summary_started:.1f} s.")
        self.stdout.write(
            f"Demo clinic ready in {time.monotonic() - started:.1f} s. Logins (password "
            f"'{DEMO_PASSWORD}'): " + ", ".join(name for name, *_ in DEMO_USERS)
        )

    def _timing(self, verbosity, what, since):
        if verbosity >= 2:
            self.stdout.write(f"  [{what}: {time.monotonic() - since:.1f} s]")

    def _seed_users(self, hashes):
        User = get_user_model()
        users = {}
        for (username, first, last, title, role), password in zip(DEMO_USERS, hashes, strict=True):
            user, created = User.objects.get_or_create(
                username=username,
                defaults={"first_name": first, "last_name": last, "professional_title": title},
            )
            if created:
                user.password = password()  # make_password(DEMO_PASSWORD), as set_password
                user.save()
                user.groups.add(Group.objects.get(name=role))
                if role == CLINICIAN:
                    # The demo clinician's calendar feed is on (a random secret link), so the
                    # account page and the admin show one; turn it off or renew it there.
                    CalendarFeed.objects.get_or_create(user=user)
            users[role] = user
        return users

    def _demo_modules(self):
        for app_config in apps.get_app_configs():
            if not app_config.path.startswith(str(settings.BASE_DIR)):
                continue  # third-party apps have no demo data of ours
            try:
                yield importlib.import_module(f"{app_config.name}.demo")
            except ModuleNotFoundError as exc:
                if exc.name != f"{app_config.name}.demo":
                    raise
