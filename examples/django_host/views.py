"""The login page, the authorization endpoint and logout: where the three calls go."""

from __future__ import annotations

from typing import Any

from django.contrib import auth
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView, redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST
from oauth2_provider.views import AuthorizationView

from .wsgi import combinedreg


class Login(LoginView):
    template_name = "login.html"

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        # The form has checked the password: tell the middleware (it sets its session cookie on
        # this response), then Django's login() makes a new session (no fixation).
        combinedreg().password_verified(self.request.META, form.get_user().get_username())
        return super().form_valid(form)


class Authorize(AuthorizationView):
    """django-oauth-toolkit's authorization endpoint, behind the middleware's guard."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.sign_in = combinedreg().sign_in_result(request.META)
        if self.sign_in is None or self.sign_in.user_id != request.user.get_username():
            # not signed in to the middleware, or as someone else: treat as not signed in
            return redirect_to_login(request.get_full_path())
        return super().dispatch(request, *args, **kwargs)

    def create_authorization_response(
        self, request: HttpRequest, scopes: str, credentials: dict[str, Any], allow: bool
    ) -> Any:
        # what the validator keeps with the code (host.SignInClaimsValidator)
        assert self.sign_in is not None
        credentials["sign_in"] = {
            "amr": list(self.sign_in.amr),  # RFC 8176: ["pwd"] or ["pwd", "otp", "mfa"]
            "acr": self.sign_in.acr,
            "auth_time": self.sign_in.auth_time,  # when the last factor completed
        }
        return super().create_authorization_response(request, scopes, credentials, allow)


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    combinedreg().sign_out(request.META)  # the middleware's session for this browser
    auth.logout(request)
    return HttpResponse("Signed out.", content_type="text/plain")


def home(request: HttpRequest) -> HttpResponse:
    state = combinedreg().current_sign_in(request.META)
    who = f"Signed in as {state.user_id} ({' + '.join(state.amr)})" if state else "Not signed in"
    return HttpResponse(who + ". My security info: /security-info/", content_type="text/plain")
