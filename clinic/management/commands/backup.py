"""python manage.py backup --output FILE: the database, MEDIA_ROOT and a manifest in one
archive (see clinic/backup.py and README "Backup and restore")."""

from django.core.management.base import BaseCommand, CommandError

from clinic import backup


class Command(BaseCommand):
    help = "Write one archive with the database, every media file and a manifest."

    def add_arguments(self, parser):
        parser.add_argument("--output", required=True, help="archive to write (a .tar file)")

    def handle(self, *args, output, **options):
        try:
            manifest = backup.backup(output)
        except backup.BackupError as error:
            raise CommandError(str(error)) from error
        media = sum(1 for name in manifest["files"] if name.startswith("media/"))
        rows = sum(manifest["tables"].values())
        self.stdout.write(
            self.style.SUCCESS(
                f"Backup written to {output}: {manifest['engine']} database "
                f"({len(manifest['tables'])} tables, {rows} rows), {media} media files."
            )
        )
