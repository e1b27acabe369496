"""The middleware's pages. Each view takes the web app and a request context and returns a
:class:`~oidc_combinedreg.web.render.Page` or :class:`~oidc_combinedreg.web.render.Redirect`."""
