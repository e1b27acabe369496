"""Whether a parsed JSON value is text all the way down.

``"\\ud800"`` is valid JSON (RFC 8259 section 8.2 allows an escape of a lone surrogate) and
``json.loads`` turns it into a ``str`` that no encoder takes: kept, it fails at the first encode
(a store's, a template's, a response's), mid-request. Request bodies are checked once, where they
are parsed (the pages' and device API's fields, the admin API's body).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["encodable"]


def encodable(value: Any) -> bool:
    """True unless ``value`` (from ``json.loads``) holds a lone surrogate anywhere."""
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True
