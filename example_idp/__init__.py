"""An example OpenID Connect provider (Flask + Authlib + Flask-Login) with oidc_combinedreg mounted.

Run it with ``python -m example_idp``; see docs/example-idp.md.
"""

from .app import create_app

__all__ = ["create_app"]
