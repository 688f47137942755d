"""Time importing patients from a CSV file (issue 14.3) on a database that `make bench` or
`seed_demo` has filled; not part of `make test`.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cicatrix_bench_20000 \\
        .venv/bin/python -m bench.patient_import [ROWS]

Writes two synthetic CSV files of ROWS (10,000) new patients, each with flags and scar sites,
then imports the first through the pages (upload, map, dry run, import, as the demo manager
with both factors, django.test.Client, DEBUG off) and the second with `manage.py
import_patients --user manager`, and prints the seconds of each step. The imports are real:
use a throwaway database.
"""

import csv
import io
import os
import random
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")


def rows(count, tag, seed):
    """`count` new patients; names and record numbers unique to this file."""
    rng = random.Random(seed)
    firsts = ["Zoë", "Aled", "Maëlle", "Iñigo", "Siân", "Kofi", "Priya", "Tomás", "Ana", "Ren"]
    sites = ["left_cheek", "right_cheek", "forehead", "chin", "upper_back", "chest", "jawline"]
    types = ["rolling", "boxcar", "icepick", "hypertrophic", "keloid", "macular"]
    flags = [
        "isotretinoin: 2025-06-01 to 2025-12-01 (20 mg daily)",
        "keloid_history",
        "pregnancy: 2026-03-01",
        "anticoagulant (warfarin)",
        "",
        "",
    ]
    for i in range(count):
        born = date(rng.randint(1950, 2006), rng.randint(1, 12), rng.randint(1, 28))
        chosen = rng.sample(sites, rng.randint(1, 3))
        yield [
            f"{tag}-{i:06d}",
            rng.choice(firsts),
            f"Muñoz-{tag}{i}",
            born.strftime("%d/%m/%Y" if i % 2 else "%Y-%m-%d"),
            rng.choice("FMX"),
            rng.choice(["I", "II", "III", "IV", "V", "VI", "unassessed"]),
            f"07700 9{i:05d}",
            f"patient{i}.{tag.lower()}@example.org",
            f"{i} Harbour Street, Exampleton",
            "",
            "",
            "; ".join(f for f in rng.sample(flags, 2) if f),
            "; ".join(f"{s}: {' + '.join(rng.sample(types, rng.randint(1, 2)))}" for s in chosen),
        ]


def csv_file(count, tag, seed, delimiter=",", encoding="utf-8"):
    from patients.importing import TEMPLATE_HEADER

    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(TEMPLATE_HEADER)
    writer.writerows(rows(count, tag, seed))
    return out.getvalue().encode(encoding)


def main():
    import django

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from django.urls import reverse

    from bench.pages import login
    from patients.models import Patient, PatientImport

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    stamp = time.strftime("%H%M%S")
    before = Patient.objects.count()
    print(f"{before:,} patients on file; importing {count:,} rows twice.", flush=True)

    client = login("manager")
    data = csv_file(count, f"WEB{stamp}", 1, delimiter=";", encoding="cp1252")
    timings = {}
    start = time.perf_counter()
    response = client.post(
        reverse("patient_import"), {"file": SimpleUploadedFile("clinic.csv", data, "text/csv")}
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    timings["upload (read and keep the file)"] = time.perf_counter() - start
    batch = PatientImport.objects.latest("pk")
    start = time.perf_counter()
    page = client.get(response.url)
    timings["mapping page"] = time.perf_counter() - start
    start = time.perf_counter()
    # The columns as the page pre-maps them (the benchmark needs no test tools installed).
    mapping = {f"column_{i}": key for i, key in enumerate(batch.mapping)}
    response = client.post(response.url, mapping)
    assert response.status_code == 302
    timings["dry run (check every row)"] = time.perf_counter() - start
    start = time.perf_counter()
    page = client.get(reverse("patient_import_check", args=[batch.pk]))
    assert page.status_code == 200
    timings["dry run page"] = time.perf_counter() - start
    batch.refresh_from_db()
    assert (batch.new_count, batch.refused_count) == (count, 0), batch.results[:3]
    start = time.perf_counter()
    response = client.post(
        reverse("patient_import_run", args=[batch.pk]), {"version": batch.version}
    )
    timings["import (check again, insert with history)"] = time.perf_counter() - start
    batch.refresh_from_db()
    assert batch.status == "imported", batch.status
    web_total = sum(timings.values())

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clinic.csv"
        path.write_bytes(csv_file(count, f"CMD{stamp}", 2))
        out = io.StringIO()
        start = time.perf_counter()
        call_command("import_patients", str(path), "--user", "manager", stdout=out)
        command = time.perf_counter() - start
    after = Patient.objects.count()
    assert after == before + 2 * count, (before, after)

    print(f"Pages (Windows-1252, semicolons), {count:,} rows:")
    for step, seconds in timings.items():
        print(f"  {step:45} {seconds:6.1f} s")
    print(f"  {'total':45} {web_total:6.1f} s")
    print(f"import_patients (UTF-8, commas), {count:,} rows: {command:.1f} s")
    print(f"  {out.getvalue().strip().splitlines()[-1]}")
    print(f"{after:,} patients on file now.")


if __name__ == "__main__":
    main()
