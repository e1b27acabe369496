"""Django settings in code: everything the example needs, with its files in one data folder."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

HERE = Path(__file__).resolve().parent


def configure(data_dir: Path) -> None:
    """Configure Django (once per process), then create or update the SQLite database."""
    import django
    from django.conf import settings
    from django.core.management import call_command

    settings.configure(
        DEBUG=False,
        SECRET_KEY=_kept(data_dir / "django-secret-key", lambda: secrets.token_urlsafe(50)),
        ALLOWED_HOSTS=["localhost", "127.0.0.1"],
        ROOT_URLCONF="django_host.urls",
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "oauth2_provider",
            "django_host",
        ],
        MIDDLEWARE=[
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": data_dir / "host.sqlite3"}
        },
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [HERE / "templates"],
                "APP_DIRS": True,  # django-oauth-toolkit's error page
                "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
            }
        ],
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
        LOGIN_URL="/login/",
        OAUTH2_PROVIDER={
            "OIDC_ENABLED": True,
            "OIDC_RSA_PRIVATE_KEY": _kept(data_dir / "oidc-signing-key.pem", _rsa_key),
            "PKCE_REQUIRED": True,
            "SCOPES": {"openid": "Sign you in", "profile": "Your name", "email": "Your email"},
            # puts the middleware's amr, acr and auth_time into the ID token (host.py)
            "OAUTH2_VALIDATOR_CLASS": "django_host.host.SignInClaimsValidator",
        },
    )
    django.setup()
    call_command("migrate", verbosity=0)


def _kept(path: Path, make: Callable[[], str]) -> str:
    """A secret made once and kept in the data folder (readable by the owner only)."""
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(make())
    return path.read_text()


def _rsa_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
