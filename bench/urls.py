"""The site's URLs plus two bare views, the floor a page's throughput is compared with."""

from django.contrib.auth.decorators import login_not_required, login_required
from django.http import HttpResponse
from django.urls import path

from clinic.urls import urlpatterns as site_urlpatterns


def _ok(request):
    return HttpResponse("ok", content_type="text/plain")


bare = login_required(_ok)
bare_anonymous = login_not_required(_ok)

urlpatterns = [
    path("bench/bare/", bare, name="bench_bare"),
    path("bench/anonymous/", bare_anonymous, name="bench_anonymous"),
    *site_urlpatterns,
]
