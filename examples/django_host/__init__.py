"""A Django identity provider with oidc-combinedreg mounted around its WSGI application.

Django does the users (``django.contrib.auth``), the login page and the sessions;
django-oauth-toolkit is the OpenID provider (discovery, /o/authorize/, /o/token/, ID tokens);
oidc-combinedreg adds the MFA step, the registration wizard and "My security info". The host
contract (docs/integration.md) is in four places:

* wsgi.py: ``CombinedRegistration(get_wsgi_application(), ...)``: the middleware outside Django;
* views.py: ``password_verified()`` after the login form's password check, ``sign_in_result()``
  in the authorization view, ``sign_out()`` at logout;
* host.py: the ``Directory`` (Django's users) and the ``AuthorizationEndpoint``
  (django-oauth-toolkit's clients), and the validator that puts amr/acr/auth_time into the ID token;
* combinedreg.toml: ``authorize_path`` is django-oauth-toolkit's ``/o/authorize/``.

``request.META`` is the WSGI environ (Django's WSGIRequest keeps the same dict), so it is what the
three calls take. Run it: ``PYTHONPATH=examples python -m django_host`` (docs/frameworks.md).
"""
