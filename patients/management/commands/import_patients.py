"""python manage.py import_patients FILE [--dry-run] [--user USERNAME]

The upload page's import from the shell, without questions: the file's columns must be named
as in the template (patients/importing.py TEMPLATE_HEADER, or the usual other names the
upload page recognises); encoding and delimiter are found as on the page. Prints every
refused and duplicate row, then a summary.

Exit status: 0 when no row is refused (duplicates are listed and skipped: they are not
errors) and, without --dry-run, the new patients were imported; 1 when any row is refused:
nothing is imported; 2 when the file cannot be read, a column is unknown or missing, or the
user cannot import.
"""

from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from clinic.uploads import megabytes
from patients import importing
from patients.models import PatientImport

UNUSABLE = 2
REFUSED_ROWS = 1


class Command(BaseCommand):
    help = (
        "Import patients from a CSV file with the template's column headers (UTF-8 or "
        "Windows-1252, comma or semicolon). Exits 1, importing nothing, when any row is "
        "refused; 2 when the file or its columns cannot be used."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the CSV file")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="check every row and say what would be imported; import nothing",
        )
        parser.add_argument(
            "--user",
            help="the staff login recorded as having imported the patients (in their history); "
            "it must be allowed to import (a manager). Without it the history names no user "
            "and gives the reason 'CSV import #N'.",
        )

    def handle(self, *args, file, dry_run, user, **options):
        importer = self._user(user)
        data = self._read(Path(file))
        try:
            parsed = importing.read_csv(data)
        except importing.FileProblem as problem:
            raise CommandError(f"{file}: {problem}", returncode=UNUSABLE) from None
        mapping = self._mapping(parsed)
        if dry_run:
            checked = importing.check(parsed, mapping)
        else:
            batch = importing.store_upload(
                data=data,
                file_name=Path(file).name,
                user=importer,
                source=PatientImport.Source.COMMAND,
            )
            checked = importing.dry_run(batch, mapping)
        self._report(parsed, checked)
        refused = checked.counts[importing.REFUSED]
        if refused:
            raise CommandError(
                f"Nothing imported: {refused:,} row{'s' if refused != 1 else ''} refused. Correct "
                "them, or remove them from the file, and run again.",
                returncode=REFUSED_ROWS,
            )
        if dry_run:
            self.stdout.write("Dry run: nothing imported.")
            return
        try:
            outcome = importing.run(batch.pk, user=importer, version=batch.version)
        except importing.ImportRefused as refusal:
            raise CommandError(str(refusal), returncode=REFUSED_ROWS) from None
        if outcome.changed:
            raise CommandError(
                "Nothing imported: the rows changed while checking; run again.",
                returncode=REFUSED_ROWS,
            )
        self.stdout.write(self.style.SUCCESS(f"{outcome.message} Import #{batch.pk}."))

    def _user(self, username):
        if not username:
            return None
        User = get_user_model()
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active login {username!r}.", returncode=UNUSABLE)
        if not user.has_perm("patients.import_patients"):
            raise CommandError(
                f"{username!r} may not import patients (a manager may).", returncode=UNUSABLE
            )
        return user

    def _read(self, path):
        limit = settings.IMPORT_MAX_BYTES
        try:
            size = path.stat().st_size
            if size > limit:
                raise CommandError(
                    f"{path}: the file is {megabytes(size)}; the limit is {megabytes(limit)} "
                    f"(IMPORT_MAX_MB). Split it into files of at most "
                    f"{settings.IMPORT_MAX_ROWS:,} rows.",
                    returncode=UNUSABLE,
                )
            with path.open("rb") as handle:
                return handle.read(limit + 1)
        except OSError as error:
            raise CommandError(f"{path}: {error.strerror}.", returncode=UNUSABLE) from None

    def _mapping(self, parsed):
        """Columns by their header names; any column the import would not read is an error,
        so that nothing in the file is left out without anyone deciding it."""
        mapping = importing.auto_mapping(parsed.header)
        unknown = []
        for index, (name, key) in enumerate(zip(parsed.header, mapping, strict=True)):
            if key:
                continue
            if not name and not any(index < len(c) and c[index] for _, c in parsed.rows):
                continue  # an unnamed, empty column (a trailing separator)
            unknown.append(importing.column_name(parsed.header, index))
        if unknown:
            raise CommandError(
                f"Columns the import does not know (or a second column for one field): "
                f"{', '.join(unknown)}. Name the columns as in the template: "
                f"{', '.join(importing.TEMPLATE_HEADER)}.",
                returncode=UNUSABLE,
            )
        problems = importing.mapping_problems(parsed.header, mapping)
        if problems:
            raise CommandError(" ".join(problems), returncode=UNUSABLE)
        return mapping

    def _report(self, parsed, checked):
        for result in checked.results:
            if result.status == importing.REFUSED:
                self.stdout.write(f"Row {result.row} refused: {' '.join(result.errors)}")
            elif result.status == importing.DUPLICATE:
                self.stdout.write(f"Row {result.row} duplicate: {result.note}")
        counts = checked.counts
        self.stdout.write(
            f"{len(parsed.rows):,} rows: {counts[importing.NEW]:,} new, "
            f"{counts[importing.DUPLICATE]:,} duplicate, {counts[importing.REFUSED]:,} refused."
        )
