"""What the middleware said about a sign-in, kept with the authorization code it produced."""

from __future__ import annotations

from django.db import models


class SignInClaims(models.Model):
    """amr, acr and auth_time for one authorization code (django-oauth-toolkit's ``Grant``),
    read back when the code is exchanged and the ID token is made. Deleted with the code."""

    grant = models.OneToOneField(
        "oauth2_provider.Grant", on_delete=models.CASCADE, related_name="sign_in"
    )
    amr = models.JSONField()  # RFC 8176 values, e.g. ["pwd", "otp", "mfa"]
    acr = models.CharField(max_length=200)  # one of [acr] in the middleware's config
    auth_time = models.IntegerField()  # when the last factor completed (OIDC Core 2)
