"""URLs of the core API: the event stream."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
