"""The clinic's local calendar: 'today', 'due' and 'overdue' use the clinic's own date."""

from datetime import datetime, time, timedelta

from django.utils import timezone


def day_start(day):
    """Midnight at the start of a local date, as an aware datetime."""
    return timezone.make_aware(datetime.combine(day, time.min))


def day_bounds(day, days=1):
    """[start, end) of a local date range, for index-friendly datetime filters."""
    return day_start(day), day_start(day + timedelta(days=days))
