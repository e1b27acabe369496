"""An approve-only push answer is refused (SECURITY.md case 30): the approval must carry the number
the user picked, signed with the device key; an answer that approves without a number (the
"tap Approve" prompt bombing relies on) or with a number the signature does not cover is refused."""

from __future__ import annotations

from typing import Any

import pytest
from test_push import METHOD, NOW, _answer, _key, _sign

from oidc_combinedreg.exceptions import InvalidInput, VerificationFailed
from oidc_combinedreg.methods.push import Outcome, response_message


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


@pytest.mark.parametrize(
    "alter",
    [
        pytest.param(lambda b, key, req: _without(b, "number"), id="no number at all"),
        pytest.param(lambda b, key, req: b | {"number": None}, id="number null"),
        pytest.param(lambda b, key, req: b | {"number": str(req.number)}, id="number as text"),
        pytest.param(
            lambda b, key, req: (
                b
                | {"signature": _sign(key, response_message(req.txid, req.challenge, 0, "approve"))}
            ),
            id="signed over no number (0)",
        ),
    ],
)
def test_an_approval_without_the_picked_number_is_refused(alter: Any) -> None:
    key, spki = _key()
    req, _ = METHOD.authenticate_begin(now=NOW)
    good = _answer(key, req, req.number, "approve")
    assert METHOD.authenticate_complete(req, spki, good, now=NOW) is Outcome.APPROVED
    with pytest.raises((InvalidInput, VerificationFailed)):
        METHOD.authenticate_complete(req, spki, alter(good, key, req), now=NOW)
