"""The parameters of an authorization request, also when it comes by POST.

OpenID Connect Core 1.0, 3.1.2.1: the authorization endpoint accepts a request by GET and by POST
(its parameters form-serialized in the body), with the same meaning. The guard reads them to
decide (``client_id``, ``acr_values``) and keeps the request as a URL to come back to after MFA
or the wizard: a POSTed request comes back as its GET equivalent, the URL's query followed by
the body's fields (so a parameter in both keeps the URL's value, as werkzeug's ``values`` and
Authlib read it). A POST the host may answer at once reaches it unchanged: the body is read once
and put back.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING
from urllib.parse import quote

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import get_input_stream

from .context import MAX_BODY

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["authorization_query"]

_FORM = "application/x-www-form-urlencoded"
#: what RFC 3986 allows in a query besides letters and digits, and "%" of the escapes
_QUERY_SAFE = "-._~!$&'()*+,;=:@/?%"


def authorization_query(environ: WSGIEnvironment) -> str:
    """The request's parameters as one query string (the URL's, then a form body's).

    Raises ``RequestEntityTooLarge`` for a body over ``MAX_BODY`` (64 KiB, room for many signed
    request objects): it could not be read whole, so it could not be decided on."""
    query = str(environ.get("QUERY_STRING", ""))
    if environ.get("REQUEST_METHOD") != "POST":
        return query
    mimetype = str(environ.get("CONTENT_TYPE", "")).split(";", 1)[0].strip().lower()
    if mimetype != _FORM:
        return query  # not an authorization request; the host answers it as it likes
    # werkzeug's stream: bounded by Content-Length, or chunked where the server ends the input.
    body = get_input_stream(environ, max_content_length=MAX_BODY).read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise RequestEntityTooLarge()
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("wsgi.input_terminated", None)
    # A request line cannot hold a raw space, CR or LF, but a body can: escape every byte that
    # may not stand in a query as it is (the URL is sent back in a Location header), and keep
    # the rest, "%XX" escapes included, so the fields decode to the same values.
    fields = quote(body, safe=_QUERY_SAFE)
    return f"{query}&{fields}" if query and fields else query or fields
