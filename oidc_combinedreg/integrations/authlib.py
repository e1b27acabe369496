"""Authlib: the sign-in's ``amr``, ``acr`` and ``auth_time`` into the ID token (OIDC Core 2).

Authlib's OpenID grants put into the ID token what the authorization code model returns from
``get_auth_time()``, ``get_acr()`` and ``get_amr()`` (``authlib.oidc.core.AuthorizationCodeMixin``;
its defaults return nothing). Store :func:`code_claims` of the middleware's result with the code,
and give your code model :class:`SignInClaimsMixin` (before Authlib's mixin) to read them back::

    from authlib.oidc.core import AuthorizationCodeMixin
    from oidc_combinedreg.integrations.authlib import SignInClaimsMixin, code_claims

    class AuthorizationCode(db.Model, SignInClaimsMixin, AuthorizationCodeMixin):
        amr = db.Column(db.JSON)          # the three attributes the mixin reads
        acr = db.Column(db.String)
        auth_time = db.Column(db.Integer)
        ...

    # in save_authorization_code(code, request), with the SignInResult of the authorize request:
    AuthorizationCode(code=code, ..., **code_claims(reg.sign_in_result(request.environ)))

Or take :data:`AuthorizationCode` (the two mixins together; Authlib loads when it is first named).
Nothing here imports Authlib at module level: a host without it can import this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..signin import SignInResult

__all__ = ["AuthorizationCode", "SignInClaimsMixin", "code_claims"]


def code_claims(result: SignInResult) -> dict[str, Any]:
    """What to store with the authorization code: ``amr`` (RFC 8176, a list), ``acr`` and
    ``auth_time`` (when the last factor completed: ``max_age`` counts from it)."""
    return {"amr": list(result.amr), "acr": result.acr, "auth_time": result.auth_time}


class SignInClaimsMixin:
    """Authlib's three ID-token getters, read from the attributes ``amr``, ``acr`` and
    ``auth_time`` of the code model (as :func:`code_claims` names them). Put it before
    ``AuthorizationCodeMixin`` in the bases, so that its methods are the ones found."""

    __slots__ = ()

    amr: Sequence[str] | None
    acr: str | None
    auth_time: int | float | None

    def get_auth_time(self) -> int | None:
        value = getattr(self, "auth_time", None)
        return int(value) if value is not None else None

    def get_acr(self) -> str | None:
        return getattr(self, "acr", None) or None

    def get_amr(self) -> list[str] | None:
        value = getattr(self, "amr", None)
        return list(value) if value else None


if TYPE_CHECKING:
    #: Authlib's ``AuthorizationCodeMixin`` with :class:`SignInClaimsMixin` (built on first use)
    AuthorizationCode: type[SignInClaimsMixin]


def __getattr__(name: str) -> Any:
    # Built on first use, so that importing this module never needs Authlib.
    if name != "AuthorizationCode":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        from authlib.oidc.core import AuthorizationCodeMixin  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - the suite has Authlib
        raise ImportError(
            "oidc_combinedreg.integrations.authlib.AuthorizationCode needs Authlib: "
            'pip install "oidc-combinedreg[example]" (or authlib)'
        ) from exc

    class AuthorizationCode(SignInClaimsMixin, AuthorizationCodeMixin):  # type: ignore[misc]
        """Authlib's OpenID code mixin with the sign-in's claims (abstract: your model adds
        ``get_redirect_uri``, ``get_scope`` and ``get_nonce``, and the three attributes)."""

    globals()["AuthorizationCode"] = AuthorizationCode
    return AuthorizationCode
