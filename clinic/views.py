from django.shortcuts import render


def home(request):
    """Landing page after login."""
    return render(request, "clinic/home.html")
