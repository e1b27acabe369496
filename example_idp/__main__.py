"""``python -m example_idp [--port N] [--issuer URL] [--tls] [--config FILE] [--no-middleware]
[--no-outbox]``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from werkzeug.serving import run_simple

from .app import DEFAULT_INSTANCE_PATH, create_app, settle_loaded_objects
from .tls import self_signed_certificate

DEMO_ACCOUNTS = """\
Demo accounts (user / password):
  alice / alice            no security info yet: registers MFA and password reset together
  admin / admin            group "admins"; office phone from the directory: a call (see the outbox)
  breakglass / breakglass  group "break-glass": excluded from enforcement, plain OIDC flow
  carol / carol            per-user MFA enforced, alone
  dave / dave              registers for password reset only
  erin / erin              legacy mode: MFA and password reset registered apart
  frank / frank            Conditional Access requires MFA for every app, alone
  grace / grace            the MFA registration policy alone"""


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m example_idp", description=__doc__)
    parser.add_argument("--host", default="localhost", help="address to listen on")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    parser.add_argument("--issuer", help="published issuer (default: http(s)://localhost:PORT)")
    parser.add_argument("--instance", type=Path, default=DEFAULT_INSTANCE_PATH)
    parser.add_argument("--tls", action="store_true", help="serve https with a self-signed cert")
    parser.add_argument("--no-middleware", action="store_true", help="the plain OpenID provider")
    parser.add_argument(
        "--no-outbox",
        action="store_true",
        help="no development outbox (/outbox): only the [delivery] providers the config names",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="the middleware's TOML file: try your own config in the demo "
        "(default: example_idp/combinedreg.toml; relative paths in it are from its folder)",
    )
    parser.add_argument(
        "--pretend-client-ip",
        default=os.environ.get("DEMO_CLIENT_IP"),
        help="act as a reverse proxy on loopback that reports this client address "
        "(try Conditional Access: DEMO_CLIENT_IP=203.0.113.9 make demo)",
    )
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    scheme = "https" if args.tls else "http"
    issuer = (args.issuer or f"{scheme}://localhost:{args.port}").rstrip("/")
    if args.config is not None and args.no_middleware:
        sys.exit("--config and --no-middleware exclude each other")
    kwargs: dict[str, Any] = {"combinedreg_config": None} if args.no_middleware else {}
    if args.config is not None:
        kwargs["combinedreg_config"] = args.config
    from oidc_combinedreg import ConfigError

    from .outbox import OutboxRefused, create_demo_app

    # The development outbox (outbox.py): every text, call and email the demo sends, at /outbox.
    factory = create_app if args.no_middleware or args.no_outbox else create_demo_app
    try:
        app = factory(instance_path=args.instance, issuer=issuer, **kwargs)
    except OutboxRefused as exc:
        sys.exit(f"error: {exc}")
    except ConfigError as exc:  # every problem with its path, as combinedreg check-config
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        sys.exit(f"{len(exc.problems)} error(s) in {args.config or 'the config'}")
    ssl_context = None
    if args.tls:
        cert, key = self_signed_certificate(Path(app.instance_path))
        ssl_context = (str(cert), str(key))
        app.config["DEMO_RP_VERIFY"] = str(cert)  # the demo RP calls this server over https
        print(f"Self-signed certificate: {cert}")
    served: Any = app
    if args.pretend_client_ip:
        served = _PretendProxy(app, args.pretend_client_ip)
        print(f"Pretending every request comes from {args.pretend_client_ip} through a proxy")
    print(f"Example IdP: {issuer}   (demo relying party: {issuer}/demo)")
    if factory is create_demo_app:
        print(f"Outbox (every text, call and email the demo sends): {issuer}/outbox")
    print(DEMO_ACCOUNTS)
    settle_loaded_objects()  # as example_idp.wsgi: what is loaded now is not walked by gc
    # Threaded: the demo relying party's token request goes over HTTP to this same server.
    run_simple(args.host, args.port, served, threaded=True, ssl_context=ssl_context)


class _PretendProxy:
    """Adds ``X-Forwarded-For`` as a reverse proxy on loopback would (the demo config trusts one),
    except to the outbox: shown to this machine's client address only, it is not a page to try
    Conditional Access on (decision 195)."""

    def __init__(self, app: Any, client_ip: str) -> None:
        self.app, self.client_ip = app, client_ip

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") != "/outbox":
            environ["HTTP_X_FORWARDED_FOR"] = self.client_ip
        return self.app(environ, start_response)


if __name__ == "__main__":
    main()
