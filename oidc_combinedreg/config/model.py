"""The configuration as frozen, typed objects. Parsed once at start-up; nothing reads raw keys later."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from .branding import BrandingConfig

if TYPE_CHECKING:
    from ..admin.config import AdminConfig
    from ..conditional_access import ConditionalAccessConfig
    from ..delivery.config import DeliveryConfig
    from ..methods.phone import PhoneConfig
    from ..methods.questions import QuestionsConfig
    from ..policy.config import PolicyConfig
    from .hardware_oath import HardwareOathConfig
    from .push import PushConfig
    from .webauthn import WebAuthnConfig

__all__ = [
    "AcrConfig",
    "Config",
    "Environment",
    "GeneralConfig",
    "NoPersistence",
    "SecretsConfig",
    "SqliteSynchronous",
    "StorageConfig",
    "ThrottleConfig",
    "TotpConfig",
    "WebConfig",
]


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class NoPersistence(StrEnum):
    """What a Redis without persistence means at start (store/redis_persistence.py)."""

    #: production: the IdP does not start (check-config: an error)
    REFUSE = "refuse"
    #: development: a warning in the log and from check-config
    WARN = "warn"
    #: ``[storage.redis] allow_no_persistence = true``: the operator said it is intended
    ALLOW = "allow"


class SqliteSynchronous(StrEnum):
    """SQLite's ``PRAGMA synchronous`` in WAL mode (docs/storage.md, "Durability")."""

    #: fsync at checkpoints only: a commit survives a process crash; a power loss may roll back
    #: the last commits (a TOTP step usable again for its remaining seconds, a few failure counts)
    NORMAL = "normal"
    #: fsync the WAL at every commit: a commit also survives a power loss; writes are several times slower
    FULL = "full"


@dataclass(frozen=True, kw_only=True, slots=True)
class GeneralConfig:
    #: shown in the wizard's header ("Contoso: keep your account secure")
    organization: str = "oidc-combinedreg"
    environment: Environment = Environment.PRODUCTION
    default_language: str = "en"
    #: the languages the pages offer (the footer's list, and what ``?lng=``/Accept-Language match)
    languages: tuple[str, ...] = ("en", "de", "fr", "es", "ja", "ar")
    #: the host's catalog folders (``<lang>/LC_MESSAGES/messages.po``), over the shipped ones
    catalog_dirs: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class WebConfig:
    #: where the middleware's own pages live
    prefix: str = "/security-info"
    #: the host's authorization endpoint, guarded by the middleware
    authorize_path: str = "/authorize"
    #: cookies get Secure and the ``__Host-`` prefix (turn off only for plain-http development)
    secure_cookies: bool = True
    #: idle lifetime of the middleware's session
    session_ttl: int = 3600
    #: how long an MFA counts as fresh for the security-info pages (the MFA gate)
    mfa_freshness: int = 600
    #: how long a password sign-in counts as fresh for users with no MFA-capable method
    password_freshness: int = 600
    #: the host's template folders, searched before the built-in ones (override any page by name)
    template_dirs: tuple[str, ...] = ()
    #: the host's logo and colour
    branding: BrandingConfig = field(default_factory=BrandingConfig)
    #: ``Strict-Transport-Security: max-age`` sent on responses to https requests (0: none)
    hsts_max_age: int = 31_536_000
    #: the host's login page: a security-info page without a session sends the user there with
    #: ``next`` (a same-origin path); empty: the "You're not signed in" page only
    login_url: str = ""

    @property
    def cookie_name(self) -> str:
        return "__Host-combinedreg" if self.secure_cookies else "combinedreg"


@dataclass(frozen=True, kw_only=True, slots=True)
class StorageConfig:
    #: ``"sqlite"`` (one host), ``"redis"`` or ``"postgres"`` (many workers and hosts)
    backend: str = "sqlite"
    sqlite_path: str = "combinedreg.sqlite3"
    busy_timeout: float = 5.0
    sqlite_synchronous: SqliteSynchronous = SqliteSynchronous.NORMAL
    redis: RedisConfig | None = None
    postgres: PostgresConfig | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class PostgresConfig:
    """``[storage.postgres]``: see docs/storage.md."""

    #: a libpq connection string or URI; empty: libpq's ``PG*`` environment variables
    dsn: str = ""
    min_connections: int = 1
    max_connections: int = 10
    #: how long a request waits for a free pooled connection
    pool_timeout: float = 5.0
    connect_timeout: float = 5.0
    statement_timeout: float = 5.0
    #: apply missing migrations when the store opens (development); else ``combinedreg migrate``
    migrate_at_start: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class RedisConfig:
    """``[storage.redis]``: see docs/redis.md."""

    url: str
    cluster: bool = False
    #: the Sentinel master service name (then ``url`` lists the Sentinels)
    sentinel: str | None = None
    socket_timeout: float = 1.0
    connect_timeout: float = 1.0
    key_prefix: str = "creg"
    audit_retention_days: int = 400
    audit_maxlen: int = 2_000_000
    #: a server without persistence: refused (production), a warning (development), or allowed
    no_persistence: NoPersistence = NoPersistence.REFUSE


@dataclass(frozen=True, kw_only=True, slots=True)
class SecretsConfig:
    #: encryption keys for secrets at rest, newest first (the first encrypts, all decrypt)
    encryption_keys: tuple[bytes, ...]
    #: pepper for hashing one-time codes
    code_pepper: bytes


@dataclass(frozen=True, kw_only=True, slots=True)
class AcrConfig:
    """The ``acr`` values the host puts in the ID token."""

    password: str = "urn:combinedreg:acr:pwd"
    mfa: str = "urn:combinedreg:acr:mfa"
    phishing_resistant: str = "urn:combinedreg:acr:phr"


@dataclass(frozen=True, kw_only=True, slots=True)
class ThrottleConfig:
    #: consecutive failed code attempts per account before it is locked for codes (NIST: at most 100)
    max_consecutive_failures: int = 100
    #: failed attempts per account within ``window`` seconds before a cool-down
    failures_per_window: int = 10
    #: failed attempts per client IP within ``window`` seconds
    ip_failures_per_window: int = 50
    window: int = 300


@dataclass(frozen=True, kw_only=True, slots=True)
class TotpConfig:
    #: the issuer shown in authenticator apps
    issuer: str = "oidc-combinedreg"
    #: accepted time steps either side of now
    drift_steps: int = 1
    #: how long a pending (not yet confirmed) secret stays valid
    pending_ttl: int = 900


@dataclass(frozen=True, kw_only=True, slots=True)
class Config:
    general: GeneralConfig
    web: WebConfig
    storage: StorageConfig
    secrets: SecretsConfig
    acr: AcrConfig
    throttle: ThrottleConfig
    totp: TotpConfig
    webauthn: WebAuthnConfig
    push: PushConfig
    hardware_oath: HardwareOathConfig
    phone: PhoneConfig
    questions: QuestionsConfig
    delivery: DeliveryConfig
    policies: PolicyConfig
    conditional_access: ConditionalAccessConfig
    admin: AdminConfig
