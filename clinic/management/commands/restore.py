"""python manage.py restore FILE --noinput: into an EMPTY database (the one DATABASE_URL
names) and MEDIA_ROOT, then verified against the archive's manifest."""

from django.core.management.base import BaseCommand, CommandError

from clinic import backup


class Command(BaseCommand):
    help = (
        "Restore a backup archive into an empty database and MEDIA_ROOT, then check row "
        "counts and file checksums against its manifest. Exits non-zero on any mismatch."
    )

    def add_arguments(self, parser):
        parser.add_argument("archive", help="an archive written by `manage.py backup`")
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="do not ask for confirmation",
        )
        parser.add_argument(
            "--force-media",
            action="store_true",
            help="restore media files even though MEDIA_ROOT already has files",
        )

    def handle(self, *args, archive, interactive, force_media, **options):
        from django.db import connection

        if interactive:
            target = connection.settings_dict["NAME"]
            answer = input(f"Restore {archive} into the database {target}? Type 'yes': ")
            if answer.strip().lower() != "yes":
                raise CommandError("Restore cancelled.")
        try:
            mismatches = backup.restore(archive, force_media=force_media, report=self.stdout.write)
        except backup.BackupError as error:
            raise CommandError(str(error)) from error
        if mismatches:
            raise CommandError(
                "Restored, but it does not match the manifest:\n  " + "\n  ".join(mismatches)
            )
        self.stdout.write(
            self.style.SUCCESS("Verified: every table's row count and every file's checksum match.")
        )
