import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from clinic.roles import CLINICIAN, FRONT_DESK, MANAGER, ROLE_PERMISSIONS, ROLES

pytestmark = pytest.mark.django_db


def test_migrations_create_the_three_role_groups():
    assert set(Group.objects.values_list("name", flat=True)) >= set(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_each_group_has_exactly_the_permissions_of_the_table(role):
    group = Group.objects.get(name=role)
    granted = {
        f"{app}.{codename}"
        for app, codename in group.permissions.values_list("content_type__app_label", "codename")
    }
    assert granted == ROLE_PERMISSIONS[role]


def test_no_role_may_delete_anything():
    for role in ROLES:
        assert not [code for code in ROLE_PERMISSIONS[role] if ".delete_" in code]


def test_managers_are_staff_and_the_others_are_not(front_desk, clinician, manager, outsider):
    assert manager.is_staff
    assert not front_desk.is_staff
    assert not clinician.is_staff
    assert not outsider.is_staff


def test_leaving_the_manager_group_removes_admin_access(manager):
    manager.groups.remove(Group.objects.get(name=MANAGER))
    manager.refresh_from_db()
    assert not manager.is_staff


def test_adding_a_user_from_the_group_side_grants_admin_access(clinician):
    Group.objects.get(name=MANAGER).user_set.add(clinician)
    clinician.refresh_from_db()
    assert clinician.is_staff


@pytest.mark.parametrize(
    ("client_fixture", "expected"),
    [("front_desk_client", 302), ("clinician_client", 302), ("manager_client", 200)],
)
def test_only_managers_reach_the_admin(request, client_fixture, expected):
    client = request.getfixturevalue(client_fixture)
    response = client.get(reverse("admin:index"))
    assert response.status_code == expected
    if expected == 200:
        assert "Cicatrix admin" in response.content.decode()


def test_has_role_reads_group_membership(front_desk, clinician):
    assert front_desk.has_role(FRONT_DESK)
    assert not front_desk.has_role(CLINICIAN)
    assert clinician.has_role(CLINICIAN)


def test_seed_demo_refuses_with_debug_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="refuses to run with DEBUG off"):
        call_command("seed_demo", patients=0)


def test_seed_demo_creates_the_demo_logins_once(settings, client, django_user_model):
    settings.DEBUG = True
    call_command("seed_demo", patients=0)
    call_command("seed_demo", patients=0)
    assert (
        django_user_model.objects.filter(username__in=["frontdesk", "clinician", "manager"]).count()
        == 3
    )
    assert client.login(username="clinician", password="cicatrix-demo")
    manager = django_user_model.objects.get(username="manager")
    assert manager.is_staff and manager.has_role(MANAGER)


def test_seed_demo_keeps_a_changed_demo_password(settings, django_user_model):
    settings.DEBUG = True
    call_command("seed_demo", patients=0)
    user = django_user_model.objects.get(username="frontdesk")
    user.set_password("changed-by-the-clinic-1")
    user.save()
    call_command("seed_demo", patients=0, force=True)
    user.refresh_from_db()
    assert user.check_password("changed-by-the-clinic-1")
