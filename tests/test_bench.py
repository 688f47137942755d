"""`make bench` measures real pages: on a tiny demo clinic every row is a 200 with numbers."""

import io

import pytest
from django.core.management import call_command

from bench import pages


@pytest.fixture
def tiny_clinic(db):
    call_command("seed_demo", patients=30, force=True, stdout=io.StringIO())


def test_bench_measures_every_key_page_with_a_200_and_numbers(tiny_clinic):
    rows = pages.measure(rounds=1)

    assert [row.page for row in rows] == [page for page, _, _ in pages.pages(pages.targets())]
    assert len(rows) == 19
    for row in rows:
        assert row.status == 200, row
        assert row.queries > 0, row
        assert 0 < row.sql_ms <= row.total_ms, row
        assert row.ratio > 0, row
    assert next(r.ratio for r in rows if r.page == pages.BASELINE) == pytest.approx(1.0)
    # The first view after a change refreshes the summary; the repeat view only reads it.
    by_page = {r.page: r for r in rows}
    assert by_page[pages.AFTER_CHANGE].queries > by_page["clinic outcomes, one year"].queries
    # The first download lays the PDF out; the repeat download is served from the cache.
    assert by_page[pages.FIRST_PDF].url == by_page["progress report PDF"].url
    assert by_page[pages.FIRST_PDF].total_ms > 3 * by_page["progress report PDF"].total_ms
    table = pages.table(rows)
    assert table.count("\n") == len(rows) + 1
    assert "| Today, one clinician |" in table


def test_bench_stops_at_a_page_that_does_not_answer_200(tiny_clinic, monkeypatch):
    real = pages.pages
    monkeypatch.setattr(pages, "pages", lambda t: [*real(t), ("missing", "clinician", "/plans/0/")])

    with pytest.raises(pages.BenchError, match="missing: GET /plans/0/ answered 404"):
        pages.measure(rounds=1)
