"""A lost phone (issue 20.6): the user deletes the device on the security-info page, and from
then on nothing the phone signs counts: a request it was asked to approve before the delete
cannot be approved, its polls are refused, and the session that waited gets no MFA.

The phone is the reference device, speaking the same protocol as the web app (the app shows the
server's refusal; tests/e2e/test_push_web_app_origin.py has the Chromium side).
"""

from __future__ import annotations

from typing import Any

import pyotp
import pytest
from test_web_push import _mfa_sign_in, _start_push, _verify, enroll, push_methods
from webtest import Browser, location

from oidc_combinedreg.device import DeviceError


def test_a_deleted_device_can_no_longer_approve(make_browser: Any) -> None:
    owner = make_browser()
    owner.login("alice")
    phone = enroll(owner)
    # A second MFA method, so that the phone may go (replace-before-remove).
    info = owner.reg.info
    setup, state = info.totp.register_begin("alice", "alice", None)
    code = pyotp.TOTP(setup.secret).at(owner.clock.now())
    info.totp.register_complete("alice", state, code, label="App", ip=None)
    # Someone with the phone and the password starts a sign-in and gets the request on it.
    finder: Browser = make_browser()
    mfa = _mfa_sign_in(finder)
    page = _start_push(finder, mfa)
    (request,) = phone.pending()
    # The owner deletes the phone on the security-info page.
    (record,) = push_methods(owner)
    url = f"/security-info/methods/{record.id}/delete"
    r = owner.post_json(url, {"csrf_token": owner.csrf(url)})
    assert location(r) == "/security-info/?done=deleted"
    assert push_methods(owner) == []
    # The phone's approval, signed with its key over the request it was shown, is refused.
    with pytest.raises(DeviceError) as err:
        phone.respond(request, page["challenge"]["number"], "approve")
    assert err.value.status in (401, 410)
    approved = owner.reg.store.list_audit(user_id="alice", event_prefix="push.approved")
    assert len(list(approved)) == 1  # the try-out when the phone was added, nothing since
    # Its polls are refused too, and the waiting session has no MFA to show for it.
    with pytest.raises(DeviceError) as err:
        phone.pending()
    assert (err.value.status, err.value.body.get("reason")) == (401, "unknown device")
    assert _verify(finder, mfa, page).status_code == 400
