"""The admin side: bearer-token auth, admin operations, Temporary Access Pass, reports, OpenAPI.

Modules (import them directly; this package imports nothing, so the config model can use
:mod:`.config` without pulling in the services):

* ``config.py``  the ``[admin]`` table (token hashes, admin group, TAP limits)
* ``auth.py``    bearer-token check and the optional admin group from the Directory
* ``tap.py``     Temporary Access Pass: issue (shown once), verify (hashed at rest), revoke
* ``reports.py`` pure report builders over store data (registration, usage, audit)
* ``service.py`` the admin operations the JSON API, the dashboard and the CLI call
* ``openapi.py`` the OpenAPI 3.1 document of the admin API (``openapi.json`` beside it)
* ``cli.py``     ``combinedreg report | tap | admin-token``
"""
