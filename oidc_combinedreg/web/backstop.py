"""The guard's backstop: the host's answer to an authorization request the middleware did not
clear must not carry an authorization response (docs/integration.md, "The guard's backstop").

A host that forgets to check ``sign_in_result()`` would issue a code for a sign-in still waiting
for MFA. The middleware holds such an answer back (the whole of it: headers and body, up to
:data:`MAX_SCANNED` bytes) and refuses it with a 403 when it carries, in any of the ways an
authorization response reaches a relying party:

* a parameter ``code``, ``id_token`` or ``access_token`` in a URL: the ``Location`` or
  ``Refresh`` header (``response_mode`` query or fragment, OAuth 2.0 Multiple Response Type
  Encoding Practices 2.1), or a URL written in the body (a JavaScript or ``<meta>`` redirect);
* a form field of that name with a value: ``response_mode=form_post`` (OAuth 2.0 Form Post
  Response Mode 2), an auto-submitted form of hidden inputs;
* a JSON/JavaScript member of that name with a string value (``web_message``-style answers);
* a JARM ``response`` (JWT Secured Authorization Response Mode, 2.3: ``query.jwt``,
  ``fragment.jwt``, ``form_post.jwt``) in a URL or form field, unless it is a signed JWT whose
  payload is only an error (an encrypted one cannot be read: refused).

An error answer (``error=...&state=...``, in any response mode) passes. Only responses the guard
did not clear are held back: a cleared request and every other path stream as before. The check
is against a careless host, not a hostile one: it reads the standard encodings, in clear.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import logging
import re
import zlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["MAX_SCANNED", "REFUSAL", "checked_response", "finding", "refuse"]

log = logging.getLogger("oidc_combinedreg")

#: the most of an uncleared answer that is held back and read; a longer one is refused (an
#: /authorize answer that is not a code is a redirect or a page of a few KiB)
MAX_SCANNED = 1 << 20

_NAMES = "code|id_token|access_token"
#: a URL parameter: right after the ``?``, ``&`` or ``#`` that starts it (so not ``error_code=``,
#: nor a script's ``code=`` assignment)
_URL_PARAM = re.compile(rf"(?<=[?&#])({_NAMES}|response)=([^&#\s\"'<>;\\]*)", re.I)
_INPUT = re.compile(r"<input\b[^>]*>", re.I)
_NAME_ATTR = re.compile(rf"\bname\s*=\s*[\"']?({_NAMES}|response)(?=[\"'\s/>]|$)", re.I)
_VALUE_ATTR = re.compile(r"\bvalue\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+))", re.I)
#: a member with a token-like string value (a label such as ``"code": "Your code"`` is not one)
_JSON_MEMBER = re.compile(rf"[\"']({_NAMES})[\"']\s*:\s*[\"'][\w.~+/=-]{{8,}}[\"']", re.I)
#: a JWS (3 segments) or JWE (5 segments) compact serialization
_JWT = re.compile(r"^[\w-]+(?:\.[\w-]*){2}(?:(?:\.[\w-]*){2})?$")
#: JavaScript string escapes a template's ``tojson`` puts in URLs (Flask escapes ``&``)
_JS_ESCAPES = ((r"\u0026", "&"), (r"\x26", "&"), (r"\u003d", "="), (r"\/", "/"))


def _jarm_carries(token: str) -> bool:
    """A JARM ``response`` carries a code unless it is a signed JWT with only an error."""
    parts = token.split(".")
    if len(parts) != 3:
        return True  # encrypted (JWE): unreadable, so fail closed
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        return True
    if not isinstance(payload, dict):
        return True
    return "error" not in payload or any(k in payload for k in ("code", "id_token", "access_token"))


def _in_text(text: str) -> str | None:
    """What in ``text`` (a header value or a body) carries an authorization response."""
    for match in _URL_PARAM.finditer(text):
        name, value = match.group(1).lower(), match.group(2)
        if name != "response":
            return f"URL parameter {name}"
        if _JWT.match(value) and _jarm_carries(value):
            return "JARM response parameter"
    for tag in _INPUT.findall(text):
        field = _NAME_ATTR.search(tag)
        if field is None:
            continue
        value_match = _VALUE_ATTR.search(tag)
        value = next((v for v in value_match.groups() if v), "") if value_match else ""
        name = field.group(1).lower()
        if name != "response" and value:
            return f"form field {name}"
        if name == "response" and _JWT.match(value) and _jarm_carries(value):
            return "JARM response form field"
    member = _JSON_MEMBER.search(text)
    return f"JSON member {member.group(1).lower()}" if member else None


def _decoded_body(headers: list[tuple[str, str]], raw: bytes) -> str | None:
    """The body as text to read, or None when it cannot be read (an unknown content coding)."""
    coding = ""
    charset = ""
    for key, value in headers:
        lower = key.lower()
        if lower == "content-encoding":
            coding = value.strip().lower()
        elif lower == "content-type":
            found = re.search(r"charset\s*=\s*\"?([\w-]+)", value, re.I)
            charset = found.group(1).lower() if found else ""
    if coding in ("gzip", "x-gzip", "deflate"):
        # bounded: a small compressed body must not expand past what is read
        wbits = 47 if "gzip" in coding else 15
        inflater = zlib.decompressobj(wbits)
        try:
            raw = inflater.decompress(raw, MAX_SCANNED + 1)
        except zlib.error:
            return None
        if len(raw) > MAX_SCANNED:
            return None
    elif coding not in ("", "identity"):
        return None
    # UTF-16/32 must be decoded to be read; every other charset a host uses is ASCII-compatible
    # in the names and URLs looked for, so latin-1 reads them without failing.
    encoding = charset if charset.startswith(("utf-16", "utf-32")) else "latin-1"
    text = raw.decode(encoding, errors="replace")
    text = html.unescape(text)
    for escape, plain in _JS_ESCAPES:
        text = text.replace(escape, plain)
    return text


def finding(headers: list[tuple[str, str]], body: bytes | None) -> str | None:
    """Why this answer carries an authorization response (None: it does not). ``body`` None:
    longer than :data:`MAX_SCANNED` (refused: it cannot be read whole)."""
    for key, value in headers:
        if key.lower() in ("location", "refresh"):
            found = _in_text(value)
            if found:
                return f"{found} in the {key} header"
    if body is None:
        return f"a body over {MAX_SCANNED} bytes"
    if not body:
        return None
    text = _decoded_body(headers, body)
    if text is None:
        return "a body in a content coding it cannot read"
    found = _in_text(text)
    return f"{found} in the body" if found else None


#: the body of the 403 that replaces a refused answer
REFUSAL = b"Sign-in is not complete: no authorization code is issued.\n"


def refuse(environ: WSGIEnvironment, why: str) -> list[tuple[str, str]]:
    """Log a refused answer (never the code itself: only where it was found); the 403's
    headers."""
    log.error(
        "host tried to issue a code for a sign-in the middleware did not clear (%s at %s): "
        "refused with 403; the authorization endpoint must check sign_in_result() and "
        "error_response() must answer only errors (docs/integration.md, 'The guard's backstop')",
        why,
        environ.get("PATH_INFO", ""),
    )
    return [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")]


def checked_response(
    app: WSGIApplication,
    environ: WSGIEnvironment,
    start_response: StartResponse,
    add_headers: Callable[[list[tuple[str, str]]], list[tuple[str, str]]],
) -> Iterable[bytes]:
    """Run ``app`` with its answer held back; pass it on, or refuse it with a 403."""
    chunks: list[bytes] = []
    held: dict[str, Any] = {}

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        # Nothing is sent before the body is read, so a later call (with exc_info) replaces it.
        held.update(status=status, headers=list(headers), exc_info=exc_info)
        return chunks.append  # the legacy write() callable writes into the held body

    body = app(environ, start)
    too_large = False
    try:
        size = 0
        for chunk in body:
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_SCANNED:
                too_large = True
                break
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    if "status" not in held:
        raise RuntimeError("the host's authorization endpoint never called start_response")
    headers: list[tuple[str, str]] = held["headers"]
    content = b"".join(chunks)
    why = finding(headers, None if too_large or len(content) > MAX_SCANNED else content)
    if why is not None:
        start_response("403 Forbidden", add_headers(refuse(environ, why)))
        return [REFUSAL]
    start_response(held["status"], add_headers(headers), held["exc_info"])
    return [content]
