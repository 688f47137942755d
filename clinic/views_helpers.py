"""Small helpers shared by the staff pages."""

from django.core.paginator import Paginator
from django.utils.dateparse import parse_date
from django.utils.http import url_has_allowed_host_and_scheme

from clinic.validators import in_clinic_range

PAGE_SIZE = 25


def paginate(request, queryset, per_page=PAGE_SIZE, param="page"):
    """A page of results; a bad page number gives the nearest real page, never an error."""
    return Paginator(queryset, per_page).get_page(request.GET.get(param))


def safe_next(request, default):
    """The `next` parameter if it is a path on this site, else `default`. Only a path
    ("/plans/3/"): redirect() would read anything else ("1", "plans") as a view name."""
    target = request.POST.get("next") or request.GET.get("next")
    if (
        target
        and target.startswith("/")
        and target.isprintable()  # no NUL, CR or LF to put into a Location header
        and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
    ):
        return target
    return default


def date_param(text):
    """A YYYY-MM-DD date from a request parameter; None when missing, garbled, impossible or
    outside the dates the clinic works with (clinic.validators)."""
    try:
        day = parse_date(text or "")
    except ValueError:
        return None
    return day if in_clinic_range(day) else None
