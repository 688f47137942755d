"""Shared fixtures: one user per role plus an outsider, and a logged-in client for each."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client, RequestFactory

from clinic.roles import CLINICIAN, FRONT_DESK, MANAGER

PASSWORD = "test-pass-Δ-2026"


# --- logging in from tests: both factors, as a person does (issue 11.7) ---------------------
# Clinicians and managers confirm a login with an authenticator code. A test client that logs
# in (`force_login`, `login`) does what that person does once the password is accepted: it
# sets up their authenticator if they have none (the set-up page) and binds the session to it
# with django_otp.login (the code page). The requirement itself stays on: a login through the
# real login page still meets the code page (tests/test_auth_security.py).


def verify_second_factor(client, user):
    """Bind the client's session to the user's authenticator, as entering its code does."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from clinic.auth_views import needs_second_factor

    if not needs_second_factor(user):
        return
    device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Test phone", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


_password_only_login = Client._login
_authenticate_login = Client.login


def _login_with_both_factors(self, user, backend=None):
    _password_only_login(self, user, backend)
    verify_second_factor(self, user)


def _login_with_a_request(self, **credentials):
    # Axes refuses to judge a login without the request it came in (its address).
    credentials.setdefault("request", RequestFactory().post("/login/"))
    return _authenticate_login(self, **credentials)


Client._login = _login_with_both_factors
Client.login = _login_with_a_request


def make_user(django_user_model, username, role=None, **extra):
    user = django_user_model.objects.create_user(
        username=username, password=PASSWORD, first_name=username.title(), **extra
    )
    if role:
        user.groups.add(Group.objects.get(name=role))
        user.refresh_from_db()
    return user


@pytest.fixture
def front_desk(db, django_user_model):
    return make_user(django_user_model, "fd_user", FRONT_DESK)


@pytest.fixture
def clinician(db, django_user_model):
    return make_user(django_user_model, "clin_user", CLINICIAN)


@pytest.fixture
def manager(db, django_user_model):
    return make_user(django_user_model, "mgr_user", MANAGER)


@pytest.fixture
def outsider(db, django_user_model):
    """A logged-in account that belongs to no role (e.g. a departed employee's leftover)."""
    return make_user(django_user_model, "outsider")


def _client_for(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def front_desk_client(client, front_desk):
    return _client_for(client, front_desk)


@pytest.fixture
def clinician_client(client, clinician):
    return _client_for(client, clinician)


@pytest.fixture
def manager_client(client, manager):
    return _client_for(client, manager)


@pytest.fixture
def outsider_client(client, outsider):
    return _client_for(client, outsider)
