"""Shared fixtures: one user per role plus an outsider, and a logged-in client for each."""

import pytest
from django.contrib.auth.models import Group

from clinic.roles import CLINICIAN, FRONT_DESK, MANAGER

PASSWORD = "test-pass-Δ-2026"


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
