"""Run the example: ``PYTHONPATH=examples python -m django_host`` (data in ./django-host-data).

It creates the user alice (password "correct horse battery staple") and prints a client's
credentials and an authorization URL to try.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from wsgiref.simple_server import make_server

from .wsgi import make_application

REDIRECT_URI = "http://localhost:8000/"  # the home page shows who signed in

if __name__ == "__main__":
    data_dir = Path("django-host-data")
    data_dir.mkdir(mode=0o700, exist_ok=True)
    app = make_application(data_dir)
    from django.contrib.auth import get_user_model
    from oauth2_provider.models import get_application_model

    users = get_user_model().objects
    if not users.filter(username="alice").exists():
        users.create_user(
            "alice", email="alice@example.test", password="correct horse battery staple"
        )
    client_secret = secrets.token_urlsafe(32)
    client, _ = get_application_model().objects.update_or_create(
        client_id="demo",
        defaults={
            "name": "demo",
            "client_secret": client_secret,  # a new one each start; hashed when saved
            "client_type": "confidential",
            "authorization_grant_type": "authorization-code",
            "redirect_uris": REDIRECT_URI,
            "algorithm": "RS256",
            "skip_authorization": True,
        },
    )
    print(f"client_id=demo client_secret={client_secret}")
    print(
        "http://localhost:8000/o/authorize?client_id=demo&response_type=code&scope=openid"
        f"&redirect_uri={REDIRECT_URI}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        "&code_challenge_method=S256  (alice / correct horse battery staple)"
    )
    # the PKCE pair of RFC 7636, Appendix B: exchange the code at /o/token/ with this verifier
    print("code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
    make_server("localhost", 8000, app).serve_forever()
