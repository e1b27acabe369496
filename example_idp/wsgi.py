"""WSGI entry for gunicorn: ``gunicorn --threads 4 'example_idp.wsgi:app'``.

Settings come from the environment: ``EXAMPLE_IDP_ISSUER`` (default http://localhost:5000),
``EXAMPLE_IDP_INSTANCE`` (default example_idp/instance). Give gunicorn threads (or several workers):
the demo relying party at /demo calls the IdP's own token endpoint over HTTP.
"""

import os

from .app import create_app

app = create_app(instance_path=os.environ.get("EXAMPLE_IDP_INSTANCE"))
