"""Load and validate the config file. A bad config raises :class:`ConfigError` naming every problem."""

from __future__ import annotations

import hashlib
import hmac
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError, ConfigProblem
from .model import (
    AcrConfig,
    Config,
    Environment,
    GeneralConfig,
    NoPersistence,
    PostgresConfig,
    RedisConfig,
    SecretsConfig,
    SqliteSynchronous,
    StorageConfig,
    ThrottleConfig,
    TotpConfig,
    WebConfig,
)
from .reader import MISSING, Reader

__all__ = ["Config", "check_config", "load_config", "parse_config"]


def _read_general(r: Reader, base_dir: Path) -> GeneralConfig:
    from .languages import read_languages

    default_language = r.string("default_language", "en", non_empty=True)
    languages, catalog_dirs = read_languages(r, base_dir, default_language)
    cfg = GeneralConfig(
        organization=r.string("organization", GeneralConfig().organization, non_empty=True),
        environment=r.choice("environment", Environment, Environment.PRODUCTION),
        default_language=default_language,
        languages=languages,
        catalog_dirs=catalog_dirs,
    )
    r.done()
    return cfg


def _read_path(r: Reader, key: str, default: str) -> str:
    value = r.string(key, default)
    if value and not value.startswith("/"):
        r.error(key, f"expected a path starting with '/', got {value!r}")
    if value.endswith("/") and value != "/":
        r.error(key, f"expected no trailing '/', got {value!r}")
    return value


def _read_web(r: Reader, env: Environment, base_dir: Path) -> WebConfig:
    from .branding import read_branding

    base = WebConfig()
    cfg = WebConfig(
        prefix=_read_path(r, "prefix", base.prefix),
        authorize_path=_read_path(r, "authorize_path", base.authorize_path),
        secure_cookies=r.boolean("secure_cookies", True),
        session_ttl=r.integer("session_ttl", base.session_ttl, min=60, max=86400),
        mfa_freshness=r.integer("mfa_freshness", base.mfa_freshness, min=30, max=86400),
        password_freshness=r.integer(
            "password_freshness", base.password_freshness, min=30, max=86400
        ),
        template_dirs=_read_template_dirs(r, base_dir),
        branding=read_branding(r.section("branding")),
        # A year (RFC 6797 6.1.1), what browsers' preload lists ask; up to two.
        hsts_max_age=r.integer("hsts_max_age", base.hsts_max_age, min=0, max=63_072_000),
        login_url=_read_login_url(r, env),
    )
    if cfg.authorize_path.startswith(cfg.prefix + "/"):
        r.error("authorize_path", "expected a path outside the middleware's prefix")
    if env is Environment.PRODUCTION and not cfg.secure_cookies:
        r.error("secure_cookies", "expected true when general.environment is 'production'")
    r.done()
    return cfg


def _read_login_url(r: Reader, env: Environment) -> str:
    """A path on this origin (``/login``) or an absolute http(s) URL; https in production."""
    from urllib.parse import urlsplit

    value = r.string("login_url", "")
    if not value:
        return ""
    parts = urlsplit(value)
    relative = value.startswith("/") and not value.startswith(("//", "/\\"))
    absolute = parts.scheme in ("https", "http") and bool(parts.netloc)
    if not (relative or absolute) or not value.isprintable() or " " in value or parts.fragment:
        r.error(
            "login_url",
            f"expected a path starting with '/' or an absolute https URL, without '#', got {value!r}",
        )
    elif absolute and parts.scheme == "http" and env is Environment.PRODUCTION:
        r.error("login_url", "expected an https URL when general.environment is 'production'")
    return value


def _read_template_dirs(r: Reader, base_dir: Path) -> tuple[str, ...]:
    dirs = []
    for i, value in enumerate(r.str_list("template_dirs")):
        path = Path(value) if os.path.isabs(value) else base_dir / value
        if not path.is_dir():
            r.error("template_dirs", f"[{i}]: expected an existing folder, got {value!r}")
        dirs.append(str(path))
    return tuple(dirs)


def _read_storage(r: Reader, base_dir: Path, env: Environment) -> StorageConfig:
    backend = r.string("backend", "sqlite", choices=("sqlite", "redis", "postgres"))
    if backend in ("redis", "postgres"):
        from ..extras import missing_extra

        if (problem := missing_extra(backend)) is not None:
            r.error("backend", f"{backend!r} {problem}")
    sq = r.section("sqlite")
    path = sq.string("path", StorageConfig().sqlite_path, non_empty=True)
    busy = sq.integer("busy_timeout_ms", 5000, min=0, max=60000)
    synchronous = sq.choice("synchronous", SqliteSynchronous, SqliteSynchronous.NORMAL)
    sq.done()
    redis = (
        _read_redis(r.section("redis", required=backend == "redis"), env)
        if (backend == "redis" or r.has("redis"))
        else None
    )
    postgres = (
        _read_postgres(r.section("postgres"), env)
        if (backend == "postgres" or r.has("postgres"))
        else None
    )
    r.done()
    path = _sqlite_path(sq, path, base_dir)
    return StorageConfig(
        backend=backend,
        sqlite_path=path,
        busy_timeout=busy / 1000,
        sqlite_synchronous=synchronous,
        redis=redis,
        postgres=postgres,
    )


def _sqlite_path(r: Reader, path: str, base_dir: Path) -> str:
    """The path relative to the config file's folder; a ``file:`` URI stays a URI."""
    from ..store.factory import sqlite_path_problem

    if path.startswith("file:"):
        # SQLite URIs: "file:name" and "file:/abs" (also "file:///abs"); only the path moves.
        rest = path[len("file:") :]
        if rest and not rest.startswith("/"):
            path = f"file:{base_dir / rest}"
    elif path and path != ":memory:" and not os.path.isabs(path):
        path = str(base_dir / path)
    problem = sqlite_path_problem(path)
    if problem is not None and path:  # an empty path is already reported
        r.error("path", problem)
    return path


def _read_postgres(r: Reader, env: Environment) -> PostgresConfig:
    dsn = r.string("dsn", "")
    if dsn and not _conninfo_parses(dsn):
        r.error(
            "dsn",
            "expected a libpq connection string (host=... dbname=...) or a postgresql:// URI",
        )
    least = r.integer("min_connections", 1, min=0, max=1000)
    most = r.integer("max_connections", 10, min=1, max=1000)
    if most < least:
        r.error("max_connections", f"expected at least min_connections ({least}), got {most}")
    cfg = PostgresConfig(
        dsn=dsn,
        min_connections=least,
        max_connections=most,
        pool_timeout=r.integer("pool_timeout_ms", 5000, min=10, max=60000) / 1000,
        # libpq counts whole seconds and takes at least 2
        connect_timeout=r.integer("connect_timeout_ms", 5000, min=2000, max=60000) / 1000,
        statement_timeout=r.integer("statement_timeout_ms", 5000, min=10, max=600000) / 1000,
        migrate_at_start=env is not Environment.PRODUCTION,
    )
    r.done()
    return cfg


def _conninfo_parses(dsn: str) -> bool:
    try:
        from psycopg import Error
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        return True  # the missing extra is reported at storage.backend
    try:
        conninfo_to_dict(dsn)
    except Error:
        return False
    return True


def _read_redis(r: Reader, env: Environment) -> RedisConfig:
    url = r.string("url", MISSING, non_empty=True)
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        r.error("url", f"expected a redis://, rediss:// or unix:// URL, got {url!r}")
    sentinel = r.string("sentinel", "") or None
    cluster = r.boolean("cluster", False)
    if cluster and sentinel:
        r.error("sentinel", "expected either cluster = true or a sentinel master name, not both")
    base = RedisConfig(url="")
    cfg = RedisConfig(
        url=url,
        cluster=cluster,
        sentinel=sentinel,
        socket_timeout=r.integer("socket_timeout_ms", 1000, min=10, max=60000) / 1000,
        connect_timeout=r.integer("connect_timeout_ms", 1000, min=10, max=60000) / 1000,
        key_prefix=r.string("key_prefix", base.key_prefix, non_empty=True),
        audit_retention_days=r.integer(
            "audit_retention_days", base.audit_retention_days, min=1, max=36500
        ),
        audit_maxlen=r.integer("audit_maxlen", base.audit_maxlen, min=1000),
        no_persistence=_no_persistence(r.boolean("allow_no_persistence", False), env),
    )
    if any(c in cfg.key_prefix for c in "{}"):
        r.error("key_prefix", "expected no '{' or '}' (they are Redis Cluster hash tags)")
    r.done()
    return cfg


def _no_persistence(allowed: bool, env: Environment) -> NoPersistence:
    # A Redis that forgets on restart: the operator's word, else refused in production only.
    if allowed:
        return NoPersistence.ALLOW
    return NoPersistence.REFUSE if env is Environment.PRODUCTION else NoPersistence.WARN


def _read_secrets(r: Reader, base_dir: Path, env: Environment, *, write: bool) -> SecretsConfig:
    from ..crypto import generate_key, parse_key

    texts = list(r.str_list("encryption_keys"))
    key_file = r.string("key_file", "")
    generate = r.boolean("generate_missing", False)
    r.done()
    if generate and env is Environment.PRODUCTION:
        r.error("generate_missing", "expected false when general.environment is 'production'")
    pending = False  # a key file the start will create
    if key_file:
        path = Path(key_file) if os.path.isabs(key_file) else base_dir / key_file
        if not path.exists() and generate and env is not Environment.PRODUCTION:
            # A check writes nothing (decision 93): the start creates the file.
            pending = not write
            if write:
                _create_key_file(path, generate_key())
        try:
            if not pending:
                texts += [line.strip() for line in path.read_text().splitlines() if line.strip()]
        except OSError as exc:
            r.error("key_file", f"cannot read {str(path)!r}: {exc.strerror}")
    keys: list[bytes] = []
    for i, text in enumerate(texts):
        try:
            keys.append(parse_key(text))
        except ValueError as exc:
            r.error("encryption_keys", f"key {i}: {exc}")
    if not texts and not pending:
        r.error(
            None, "expected encryption_keys or key_file (generate one: combinedreg generate-key)"
        )
    if not keys:
        return SecretsConfig(encryption_keys=(b"\0" * 32,), code_pepper=b"\0" * 32)
    return SecretsConfig(encryption_keys=tuple(keys), code_pepper=_derive_pepper(keys[0]))


def _create_key_file(path: Path, key: str) -> None:
    """Create the key file once, even when several worker processes start at the same moment:
    O_EXCL lets exactly one of them write it; the others read what it wrote."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    try:
        os.link(tmp, path)  # atomic, and fails if another process created the file first
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def _derive_pepper(key: bytes) -> bytes:
    # One-time codes are hashed with a pepper derived from the newest key: rotating the key only
    # invalidates codes still in flight (minutes), and no second secret has to be managed.
    return hmac.new(key, b"oidc-combinedreg one-time code pepper", hashlib.sha256).digest()


def _read_acr(r: Reader) -> AcrConfig:
    base = AcrConfig()
    cfg = AcrConfig(
        password=r.string("password", base.password, non_empty=True),
        mfa=r.string("mfa", base.mfa, non_empty=True),
        phishing_resistant=r.string("phishing_resistant", base.phishing_resistant, non_empty=True),
    )
    r.done()
    return cfg


def _read_throttle(r: Reader) -> ThrottleConfig:
    base = ThrottleConfig()
    cfg = ThrottleConfig(
        max_consecutive_failures=r.integer(
            "max_consecutive_failures", base.max_consecutive_failures, min=3, max=100
        ),
        failures_per_window=r.integer("failures_per_window", base.failures_per_window, min=1),
        ip_failures_per_window=r.integer(
            "ip_failures_per_window", base.ip_failures_per_window, min=1
        ),
        window=r.integer("window", base.window, min=10, max=86400),
    )
    r.done()
    return cfg


def _read_totp(r: Reader) -> TotpConfig:
    base = TotpConfig()
    cfg = TotpConfig(
        issuer=r.string("issuer", base.issuer, non_empty=True),
        drift_steps=r.integer("drift_steps", base.drift_steps, min=0, max=2),
        pending_ttl=r.integer("pending_ttl", base.pending_ttl, min=60, max=3600),
    )
    r.done()
    return cfg


def _parse(
    data: Mapping[str, Any], base_dir: Path, *, write: bool = True
) -> tuple[Config | None, list[ConfigProblem]]:
    from ..admin.config import read_admin
    from ..conditional_access import lint as lint_ca
    from ..conditional_access import read_conditional_access
    from ..delivery.config import read_delivery
    from ..methods.phone import read_phone_config
    from ..methods.questions import read_questions_config
    from ..policy.config import read_policies
    from .hardware_oath import read_hardware_oath
    from .push import read_push
    from .webauthn import read_webauthn

    root = Reader(data)
    general = _read_general(root.section("general"), base_dir)
    env = general.environment
    methods = root.section("methods")
    totp = _read_totp(methods.section("totp"))
    webauthn = read_webauthn(methods.section("webauthn"), base_dir)
    push = read_push(methods.section("push"), base_dir)
    hardware_oath = read_hardware_oath(methods.section("hardware_oath"))
    phone = read_phone_config(methods.section("phone"))
    questions = read_questions_config(methods.section("questions"))
    methods.done()
    config = Config(
        general=general,
        web=_read_web(root.section("web"), env, base_dir),
        storage=_read_storage(root.section("storage"), base_dir, env),
        secrets=_read_secrets(root.section("secrets"), base_dir, env, write=write),
        acr=_read_acr(root.section("acr")),
        throttle=_read_throttle(root.section("throttle")),
        totp=totp,
        webauthn=webauthn,
        push=push,
        hardware_oath=hardware_oath,
        phone=phone,
        questions=questions,
        delivery=read_delivery(root, env),
        policies=read_policies(root),
        conditional_access=read_conditional_access(root),
        admin=read_admin(root),
    )
    root.done()
    problems = root.problems + _questions_conflict(config) + _web_app_origin(config)
    if any(p.severity == "error" for p in problems):
        return None, problems
    return config, problems + lint_ca(config.conditional_access) + _registration_warnings(config)


def _web_app_origin(config: Config) -> list[ConfigProblem]:
    from .push import web_app_origin_problems

    production = config.general.environment is Environment.PRODUCTION
    return web_app_origin_problems(
        config.push.web_app_origin, production=production, idp_origins=config.webauthn.origins
    )


def _questions_conflict(config: Config) -> list[ConfigProblem]:
    """Questions a user writes are asked at a reset only after another method proved the user
    (policy/reset.py): they would show that the account exists. So where one method is enough,
    they cannot also be the only one."""
    sspr = config.policies.sspr
    if not (config.questions.allow_custom and sspr.allow_questions_alone):
        return []
    if sspr.methods_required != 1:
        return []
    return [
        ConfigProblem(
            "policies.sspr.allow_questions_alone",
            "expected false while methods.questions.allow_custom is true and methods_required is "
            "1: a question a user wrote would show that the account exists, so questions are "
            "asked only after another method, and can never be the only one",
        )
    ]


def _registration_warnings(config: Config) -> list[ConfigProblem]:
    """Warn when nothing protects the first registration of a password-only account."""
    from ..conditional_access import PolicyState

    protected = any(
        p.state is PolicyState.ON and p.target.user_action is not None
        for p in config.conditional_access.policies
    )
    if protected:
        return []
    return [
        ConfigProblem(
            "conditional_access",
            "no policy that is on targets the user action 'register-security-information': a password "
            "alone can register a user's first method (see docs/conditional-access.md)",
            severity="warning",
        )
    ]


def parse_config(data: Mapping[str, Any], *, base_dir: str | Path = ".") -> Config:
    """Build a :class:`Config` from an already parsed TOML document (relative paths from base_dir)."""
    config, problems = _parse(data, Path(base_dir))
    if config is None:
        raise ConfigError([p for p in problems if p.severity == "error"])
    return config


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            [ConfigProblem("", f"cannot read {str(path)!r}: {exc.strerror}")]
        ) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # TOML files are UTF-8 (TOML 1.0, "Spec"); name where the first other byte is.
        line = raw.count(b"\n", 0, exc.start) + 1
        where = f"line {line}, byte {exc.start} (0x{raw[exc.start]:02x})"
        raise ConfigError(
            [
                ConfigProblem(
                    "", f"{path.name}: expected UTF-8 text, found another encoding at {where}"
                )
            ]
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem("", f"{path.name}: not valid TOML: {exc}")]) from exc
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively; no config is that deep.
        raise ConfigError(
            [ConfigProblem("", f"{path.name}: nested too deeply (arrays or inline tables)")]
        ) from None


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a TOML config file. Raises :class:`ConfigError` listing every problem."""
    p = Path(path)
    return parse_config(_read_toml(p), base_dir=p.parent)


def check_config(path: str | os.PathLike[str]) -> list[ConfigProblem]:
    """Every problem in the file, errors and warnings (what ``combinedreg check-config`` prints)."""
    p = Path(path)
    try:
        data = _read_toml(p)
    except ConfigError as exc:
        return list(exc.problems)
    config, problems = _parse(data, p.parent, write=False)
    if config is not None:
        from ..clock import SystemClock
        from ..store.factory import redis_problems

        # The server itself, as the start will check it (docs/redis.md, "Persistence").
        problems += redis_problems(config.storage, clock=SystemClock())
    return problems
