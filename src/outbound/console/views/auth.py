"""Sign in and out (a Django session with CSRF), and the start page."""

from __future__ import annotations

from django import forms
from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from outbound.accounts import throttling
from outbound.console.dashboard import dashboard
from outbound.console.views.base import AUTHENTICATED, ConsoleView

INVALID_LOGIN = "No active account found with the given credentials"


class LoginForm(forms.Form):
    username = forms.CharField(max_length=150, label="Username")
    password = forms.CharField(
        max_length=4096, label="Password", strip=False, widget=forms.PasswordInput
    )


def _safe_next(request: HttpRequest, value: str | None) -> str:
    if value and url_has_allowed_host_and_scheme(
        value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return value
    return reverse("console:home")


@method_decorator([sensitive_post_parameters("password"), never_cache], name="dispatch")
class LoginView(View):
    """Failed sign-ins count against the same per-username throttle as the token endpoint."""

    template_name = "console/login.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            return HttpResponseRedirect(_safe_next(request, request.GET.get("next")))
        return self.page(request, LoginForm(), request.GET.get("next", ""))

    def post(self, request: HttpRequest) -> HttpResponse:
        form = LoginForm(request.POST)
        next_url = request.POST.get("next", "")
        if not form.is_valid():
            return self.page(request, form, next_url, status=400)
        username = form.cleaned_data["username"]
        slot = throttling.claim(username)
        if slot is None:
            wait = throttling.retry_after(username)
            form.add_error(None, f"Too many failed sign-ins. Try again in {wait} seconds.")
            return self.page(request, form, next_url, status=429)
        user = authenticate(request, username=username, password=form.cleaned_data["password"])
        if user is None or not user.is_active:
            form.add_error(None, INVALID_LOGIN)
            return self.page(request, form, next_url, status=400)
        throttling.release(slot)
        login(request, user)  # rotates the session key and the CSRF token
        return HttpResponseRedirect(_safe_next(request, next_url))

    def page(
        self, request: HttpRequest, form: LoginForm, next_url: str, status: int = 200
    ) -> HttpResponse:
        return render(request, self.template_name, {"form": form, "next": next_url}, status=status)


class LogoutView(View):
    """POST only, so a link elsewhere cannot sign anyone out."""

    def post(self, request: HttpRequest) -> HttpResponse:
        logout(request)
        return redirect("console:login")


class HomeView(ConsoleView):
    """The dashboard: deliveries per hour, the queue, the active configuration and its last
    test, the last failures — each card only for a user who may see what it shows."""

    required = {"GET": AUTHENTICATED}

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, "console/home.html", {"cards": dashboard(request.user)})
