"""The ``[methods.hardware_oath]`` table: code windows and the import's seed-strength floor."""

from __future__ import annotations

from dataclasses import dataclass

from .reader import Reader

__all__ = ["HardwareOathConfig", "read_hardware_oath"]


@dataclass(frozen=True, kw_only=True, slots=True)
class HardwareOathConfig:
    #: HOTP look-ahead: codes for the next ``hotp_window`` counter values are accepted
    #: (RFC 4226 section 7.4's parameter *s*; SECURITY.md case 28 wants it small)
    hotp_window: int = 10
    #: how far ahead two consecutive codes may resynchronize a drifted HOTP token
    resync_window: int = 200
    #: TOTP time steps accepted either side of now
    totp_drift_steps: int = 1
    #: smallest seed the import accepts, in bits (NIST SP 800-63B: at least 112)
    min_secret_bits: int = 128


def read_hardware_oath(r: Reader) -> HardwareOathConfig:
    """Read ``[methods.hardware_oath]``; every key is optional."""
    base = HardwareOathConfig()
    cfg = HardwareOathConfig(
        hotp_window=r.integer("hotp_window", base.hotp_window, min=1, max=50),
        resync_window=r.integer("resync_window", base.resync_window, min=10, max=1000),
        totp_drift_steps=r.integer("totp_drift_steps", base.totp_drift_steps, min=0, max=2),
        min_secret_bits=r.integer("min_secret_bits", base.min_secret_bits, min=112, max=512),
    )
    r.done()
    return cfg
