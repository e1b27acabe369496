"""Request bodies: the IdP's forms are small. A larger body is refused with 413 before anything
reads it, and the connection is then closed cleanly (oidc_combinedreg's lingering close), also
when ``Content-Length`` promises more than the client sends."""

from __future__ import annotations

from flask import Flask, abort, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import RequestEntityTooLarge

from oidc_combinedreg import MAX_BODY, Lingering, declared_too_large

__all__ = ["init_body_limit"]


def init_body_limit(app: Flask) -> None:
    # The same bound as the middleware's pages; also what werkzeug enforces while it reads a
    # chunked body or a form.
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY, MAX_FORM_MEMORY_SIZE=MAX_BODY)

    @app.before_request
    def _refuse_large_bodies() -> None:
        if declared_too_large(request.environ, MAX_BODY):
            abort(413)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge) -> ResponseReturnValue:
        text = "The request is too large."
        response = app.make_response(
            (render_template("example_idp/error.html", error="too_large", text=text), 413)
        )
        # Once written, end the connection cleanly (what the body left unread is drained). The
        # body as bytes (iter_encoded): a response's body may be text, Lingering's is not.
        response.response = Lingering(response.iter_encoded(), request.environ)
        return response
