"""Export patients' records as FHIR R4 bundles (JSON), one patient or every patient.

    manage.py export_fhir --patient CX-000123 [--output FILE]     (standard output by default)
    manage.py export_fhir --all --output-dir DIR [--batch 200]

--all writes one file per patient (archived patients included) into DIR, reading the
patients a batch at a time (plans.exports.iter_records): memory stays that of one batch
whatever the size of the clinic. Files are created readable by their owner only: they hold
patient records. Run from a shell, the export is outside the app's access log (there is no
staff member to record); the app's own downloads are logged.
"""

import json
import os
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from patients.models import Patient
from plans import exports, fhir
from plans.full_record import file_safe


def _open_private(path):
    """A new or truncated file that only its owner can read (mode 600)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an existing file keeps its old mode otherwise
    return os.fdopen(descriptor, "w", encoding="utf-8")


def bundle_file_name(patient):
    """<record number>.fhir.json; a record number that is not file-safe as it stands gets
    its row id too, so two numbers that clean up alike cannot overwrite each other."""
    safe = file_safe(patient.record_number)
    if safe != patient.record_number:
        safe = f"{safe}__{patient.pk}"
    return f"{safe}.fhir.json"


class Command(BaseCommand):
    help = "Export one patient's record (--patient) or every patient's (--all) as FHIR R4 JSON."

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument(
            "--patient", metavar="RECORD_NUMBER", help="The patient's record number."
        )
        which.add_argument("--all", action="store_true", help="Every patient, one file each.")
        parser.add_argument(
            "--output", metavar="FILE", help="With --patient: write here (default: stdout)."
        )
        parser.add_argument(
            "--output-dir", metavar="DIR", help="With --all: the folder for the files."
        )
        parser.add_argument(
            "--batch",
            type=int,
            default=exports.BATCH,
            help=f"With --all: patients read at a time (default {exports.BATCH}).",
        )

    def handle(self, *args, patient, all, output, output_dir, batch, **options):
        system = settings.FHIR_RECORD_NUMBER_SYSTEM
        now = timezone.now()
        if patient is not None:
            if output_dir:
                raise CommandError("--output-dir goes with --all; use --output with --patient.")
            return self._one(patient, output, system, now)
        if output:
            raise CommandError("--output goes with --patient; use --output-dir with --all.")
        if not output_dir:
            raise CommandError("--all needs --output-dir DIR, the folder for the files.")
        if batch < 1:
            raise CommandError("--batch must be at least 1.")
        return self._all(Path(output_dir), batch, system, now)

    def _one(self, record_number, output, system, now):
        found = Patient.objects.filter(record_number=record_number).first()
        if found is None:
            raise CommandError(f"No patient has the record number {record_number!r}.")
        record = exports.load_records([found])[0]
        bundle = fhir.build_bundle(record, system=system, generated_at=now)
        if output:
            with _open_private(output) as handle:
                json.dump(bundle, handle, ensure_ascii=False, indent=1)
            self.stderr.write(f"Wrote the FHIR record of {record_number} to {output}.")
        else:
            self.stdout.write(json.dumps(bundle, ensure_ascii=False, indent=1))

    def _all(self, folder, batch, system, now):
        if folder.exists() and not folder.is_dir():
            raise CommandError(f"{folder} exists and is not a folder.")
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        started = time.monotonic()
        written = 0
        for record in exports.iter_records(batch=batch):
            bundle = fhir.build_bundle(record, system=system, generated_at=now)
            with _open_private(folder / bundle_file_name(record.patient)) as handle:
                json.dump(bundle, handle, ensure_ascii=False, separators=(",", ":"))
            written += 1
        seconds = time.monotonic() - started
        self.stdout.write(
            f"Wrote {written} FHIR record{'s' if written != 1 else ''} to {folder} "
            f"in {seconds:.1f} s."
        )
