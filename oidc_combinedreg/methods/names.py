"""The names users give their methods (issue 19.6): which kinds have one, and what a name may be.

A phone or an email address is named by its (masked) number or address, and a kind a user has at
most one of by the kind itself; the kinds a user may hold several of carry a name of the user's
own: an authenticator app, a push device (its default: the name the app reported), a hardware
token, a security key, an app password. The name is the record's ``label``, changed with the
store's ``update_method`` like any other change of a method.
"""

from __future__ import annotations

from ..exceptions import InvalidInput
from .kinds import MethodKind

__all__ = ["NAMEABLE", "NAME_MAX", "clean_name"]

#: kinds whose ``label`` is the user's own name for the method (and so may be changed)
NAMEABLE = frozenset(
    {
        MethodKind.TOTP,
        MethodKind.PUSH,
        MethodKind.HARDWARE_OATH,
        MethodKind.WEBAUTHN,
        MethodKind.APP_PASSWORD,
    }
)

#: the longest name, in characters (the security key's limit since its first release)
NAME_MAX = 64


def clean_name(text: object) -> str:
    """The name to store: runs of white space made one space, trimmed; 1-64 printable
    characters. Printable refuses control and format characters (a right-to-left override
    would make one name read as another in every list that shows it)."""
    name = " ".join(text.split()) if isinstance(text, str) else ""
    if not name:
        raise InvalidInput("name", "Enter a name.")
    if len(name) > NAME_MAX or not name.isprintable():
        raise InvalidInput("name", "Use at most 64 letters, digits, spaces and punctuation marks.")
    return name
