"""Server-side SVG charts (plans/charts.py): pure functions, no database."""

import re
import xml.etree.ElementTree as ET
from datetime import date

from plans import charts
from plans.charts import Point, bar_chart, trend_chart

SVG = "{http://www.w3.org/2000/svg}"
D1, D2, D3 = date(2026, 1, 2), date(2026, 1, 5), date(2026, 2, 2)


def parse(svg):
    """The chart as an XML tree: also proves the markup is well formed."""
    return ET.fromstring(svg)


def find(tree, tag, cls=None):
    return [e for e in tree.iter(f"{SVG}{tag}") if cls is None or e.get("class") == cls]


def vss_chart(points, markers=(), title="Upper back: Vancouver Scar Scale"):
    return trend_chart(points, low=0, high=13, markers=list(markers), title=title)


def y_tick_labels(svg):
    """The numbers written beside the horizontal grid lines, top to bottom as drawn."""
    return re.findall(rf'<text x="{charts.LEFT - 6}" [^>]*>([^<]*)</text>', svg)


# --- trend_chart ---------------------------------------------------------------------------


def test_trend_chart_draws_one_point_per_score():
    tree = parse(vss_chart([Point(D1, 9), Point(D2, 7), Point(D3, 5)]))

    points = find(tree, "circle", "point")
    assert len(points) == 3
    assert [c.find(f"{SVG}title").text for c in points] == [
        "2026-01-02: 9",
        "2026-01-05: 7",
        "2026-02-02: 5",
    ]


def test_trend_chart_places_points_by_date_and_by_score():
    tree = parse(vss_chart([Point(D3, 0), Point(D1, 13)]))  # given out of order

    first, last = find(tree, "circle", "point")
    # earliest date at the left edge, latest at the right edge
    assert float(first.get("cx")) == charts.LEFT
    assert float(last.get("cx")) == charts.WIDTH - charts.RIGHT
    # the instrument's maximum at the top, its minimum at the bottom
    assert float(first.get("cy")) == charts.TOP
    assert float(last.get("cy")) == charts.HEIGHT - charts.BOTTOM


def test_trend_chart_draws_a_dashed_marker_per_session_date():
    svg = vss_chart([Point(D1, 9), Point(D2, 7)], markers=[D2, D3, D3])

    markers = find(parse(svg), "line", "session-marker")
    assert len(markers) == 2  # the repeated date is drawn once
    assert all(m.get("stroke-dasharray") for m in markers)
    assert [m.find(f"{SVG}title").text for m in markers] == [
        "Session 2026-01-05",
        "Session 2026-02-02",
    ]


def test_trend_chart_draws_no_session_markers_without_sessions():
    assert find(parse(vss_chart([Point(D1, 9), Point(D2, 7)])), "line", "session-marker") == []


def test_trend_chart_joins_the_points_only_when_there_are_two_or_more():
    one = parse(vss_chart([Point(D1, 9)], markers=[D2]))
    two = parse(vss_chart([Point(D1, 9), Point(D2, 7)]))

    assert find(one, "polyline") == []
    assert len(find(one, "circle", "point")) == 1
    (line,) = find(two, "polyline", "trend")
    assert len(line.get("points").split()) == 2


def test_trend_chart_of_nothing_is_empty():
    assert vss_chart([]) == ""


def test_trend_chart_y_ticks_are_whole_numbers_from_the_minimum_to_the_maximum():
    labels = y_tick_labels(vss_chart([Point(D1, 9), Point(D2, 7)]))

    assert labels == ["0", "4", "8", "13"]  # 12 and 13 too close to label both


def test_trend_chart_y_ticks_include_the_maximum_of_other_instruments():
    cases = {(6, 60): ["6", "20", "34", "48", "60"], (1, 5): ["1", "2", "3", "4", "5"]}
    for (low, high), expected in cases.items():
        svg = trend_chart([Point(D1, low)], low=low, high=high, title="t")
        assert y_tick_labels(svg) == expected
    ecca = y_tick_labels(trend_chart([Point(D1, 100)], low=0, high=540, title="t"))
    assert ecca[0] == "0" and ecca[-1] == "540"
    assert all(label.isdigit() for label in ecca)


def test_trend_chart_says_which_direction_is_better():
    assert "lower is better" in vss_chart([Point(D1, 9)])
    higher = trend_chart([Point(D1, 9)], low=0, high=13, title="t", lower_is_better=False)
    assert "higher is better" in higher and "lower is better" not in higher


def test_trend_chart_escapes_the_title_and_point_labels():
    hostile = '<script>alert("x")</script> & "quoted"'
    svg = vss_chart([Point(D1, 9, label="<b>bold</b>"), Point(D2, 7)], title=hostile)

    tree = parse(svg)
    assert "<script>" not in svg and "<b>" not in svg
    assert not [e for e in tree.iter() if e.tag.endswith(("script", "}b"))]
    assert tree.find(f"{SVG}title").text == hostile  # shown as text, intact
    assert tree.get("aria-label") == hostile
    assert find(tree, "circle", "point")[0].find(f"{SVG}title").text == "<b>bold</b>"


# --- bar_chart -----------------------------------------------------------------------------


def bars_of(svg):
    return find(parse(svg), "rect", "bar")


def zero_line_x(svg):
    (axis,) = [line for line in find(parse(svg), "line") if line.get("x1") == line.get("x2")]
    return float(axis.get("x1"))


def test_bar_chart_draws_one_bar_per_row_with_its_label_and_value():
    rows = [("Cryotherapy · Hypertrophic", -2.5), ("Microneedling · Rolling", 1), ("Peel", 0)]
    svg = bar_chart(rows, title="Mean change", unit=" pts")

    assert len(bars_of(svg)) == 3
    texts = [t.text for t in parse(svg).iter(f"{SVG}text")]
    assert "Cryotherapy · Hypertrophic" in texts
    assert "-2.5 pts" in texts and "1 pts" in texts and "0 pts" in texts


def test_bar_chart_draws_decreases_left_of_zero_and_increases_right_of_it():
    svg = bar_chart([("down", -4), ("up", 2)], title="Mean change")
    zero = zero_line_x(svg)
    down, up = bars_of(svg)

    assert float(down.get("x")) + float(down.get("width")) == zero
    assert float(down.get("x")) < zero
    assert float(up.get("x")) == zero
    # lengths are to scale: the largest magnitude gets the longest bar
    assert float(down.get("width")) == 2 * float(up.get("width"))
    assert down.get("fill") != up.get("fill")


def test_bar_chart_escapes_labels():
    svg = bar_chart([("<img src=x onerror=alert(1)>", -1)], title="<t>", unit="<u>")

    assert "<img" not in svg and "<t>" not in svg and "<u>" not in svg
    assert "<img src=x onerror=alert(1)>" in [t.text for t in parse(svg).iter(f"{SVG}text")]


def test_bar_chart_of_nothing_is_empty():
    assert bar_chart([], title="Mean change") == ""
