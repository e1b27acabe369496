"""The host's side of the contract: the Directory, the AuthorizationEndpoint, the ID token's claims."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from oauth2_provider.models import Grant, get_application_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from oidc_combinedreg import DirectoryUser, PasswordRejected, PerUserMfa

from .models import SignInClaims


class UserDirectory:
    """Django's users as the middleware sees them; the user id is the username."""

    def get_user(self, user_id: str) -> DirectoryUser | None:
        user = get_user_model().objects.filter(username=user_id).first()
        if user is None:
            return None
        return DirectoryUser(
            id=user.get_username(),
            display_name=user.get_full_name() or user.get_username(),
            email=user.email or None,
            groups=frozenset(user.groups.values_list("name", flat=True)),
            enabled=user.is_active,
        )

    def set_password(self, user_id: str, new_password: str) -> None:
        """Self-service password reset: Django's AUTH_PASSWORD_VALIDATORS decide."""
        user = get_user_model().objects.get(username=user_id)
        try:
            validate_password(new_password, user)
        except ValidationError as error:
            raise PasswordRejected(error.messages) from None  # shown to the user
        user.set_password(new_password)
        user.save(update_fields=["password"])

    def set_per_user_mfa(self, user_id: str, state: PerUserMfa) -> None:
        raise NotImplementedError("per-user MFA is not kept in this example's directory")


class OAuthToolkitEndpoint:
    """Answers a relying party for the middleware (prompt=none, "Cancel sign-in"; OIDC Core
    3.1.2.6) through django-oauth-toolkit's registered applications."""

    def error_response(
        self, environ: dict[str, Any], params: Mapping[str, str], error: str, description: str
    ) -> Response:
        application = _application(params)
        redirect_uri = params.get("redirect_uri", "")
        if application is None or not application.redirect_uri_allowed(redirect_uri):
            # never redirect to a URI that is not the client's (RFC 6749 4.1.2.1)
            return Response("Invalid client or redirect URI.", status=400, mimetype="text/plain")
        answer = {"error": error, "error_description": description}
        if "state" in params:
            answer["state"] = params["state"]
        separator = "&" if "?" in redirect_uri else "?"
        return redirect(redirect_uri + separator + urlencode(answer), code=302)

    def effective_params(
        self, environ: dict[str, Any], params: Mapping[str, str]
    ) -> Mapping[str, str] | None:
        """django-oauth-toolkit has no pushed requests, request objects or default acr values:
        the request as sent, for a client it knows (None: it refuses the request anyway)."""
        return params if _application(params) is not None else None


def _application(params: Mapping[str, str]) -> Any:
    return get_application_model().objects.filter(client_id=params.get("client_id", "")).first()


class SignInClaimsValidator(OAuth2Validator):
    """Keeps the middleware's amr, acr and auth_time with the code, and puts them into the ID
    token (OIDC Core 2) when the code is exchanged."""

    def save_authorization_code(
        self, client_id: str, code: dict[str, str], request: Any, *args: Any, **kwargs: Any
    ) -> None:
        super().save_authorization_code(client_id, code, request, *args, **kwargs)
        # request.sign_in: views.Authorize passes it in the credentials
        SignInClaims.objects.create(grant=Grant.objects.get(code=code["code"]), **request.sign_in)

    def validate_code(
        self, client_id: str, code: str, client: Any, request: Any, *args: Any, **kwargs: Any
    ) -> bool:
        valid: bool = super().validate_code(client_id, code, client, request, *args, **kwargs)
        if valid:
            claims = SignInClaims.objects.get(grant__code=code)
            request.sign_in = {"amr": claims.amr, "acr": claims.acr, "auth_time": claims.auth_time}
        return valid

    def get_id_token_dictionary(
        self, token: Any, token_handler: Any, request: Any
    ) -> tuple[dict[str, Any], Any]:
        claims, expiration_time = super().get_id_token_dictionary(token, token_handler, request)
        # replaces django-oauth-toolkit's auth_time (the user's last_login) with the middleware's
        claims.update(getattr(request, "sign_in", {}))
        return claims, expiration_time
