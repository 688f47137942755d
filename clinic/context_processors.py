from clinic.roles import CLINICIAN, FRONT_DESK, MANAGER


def roles(request):
    """Role flags for navigation; permission checks themselves stay in the views."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "is_front_desk": user.has_role(FRONT_DESK),
        "is_clinician": user.has_role(CLINICIAN),
        "is_manager": user.has_role(MANAGER),
    }
