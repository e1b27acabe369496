"""The IdP's Flask request class: its cookies read from the one WSGI key that holds them.

werkzeug reads ``Request.cookies`` through ``headers.getlist("Cookie")``, and its headers over a
WSGI environ (``EnvironHeaders``) have no index: ``getlist`` turns every key of the environ into
a header name to find the one it wants, some forty keys behind gunicorn, for each request that
opens Flask's session (every request of the IdP): about a twentieth of a code issuance's Python
(issue 22). The only key that becomes a header named ``Cookie`` is ``HTTP_COOKIE`` (PEP 3333:
a header's name, upper-cased, ``-`` as ``_``, after ``HTTP_``; the server joins repeated
headers into it), so reading it is the same list: one value, or none. The parsing is werkzeug's,
the same function on the same string.
"""

from __future__ import annotations

from flask import Request
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.sansio.http import parse_cookie  # what werkzeug's Request.cookies calls
from werkzeug.utils import cached_property

__all__ = ["IdpRequest"]


class IdpRequest(Request):
    @cached_property
    def cookies(self) -> ImmutableMultiDict[str, str]:
        """What werkzeug's ``cookies`` returns (tests/web/test_web_example_idp_request.py)."""
        found = parse_cookie(self.environ.get("HTTP_COOKIE", ""), cls=self.dict_storage_class)
        return found  # type: ignore[return-value]  # werkzeug's own ignore: cls is immutable
