"""``reg.current_sign_in(environ)``: the host's own pages ask who is signed in to the middleware in
this browser, with which amr and when (issue 18.4), e.g. for a recent MFA before an admin page."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from webtest import Browser
from werkzeug.test import EnvironBuilder

from oidc_combinedreg import DirectoryUser, SignInState


def _environ(browser: Browser) -> dict[str, object]:
    """A request of the host's own page, from this browser (its cookies only)."""
    cookie = browser.client.get_cookie("combinedreg")
    headers = {"Cookie": f"combinedreg={cookie.value}"} if cookie is not None else {}
    return EnvironBuilder(path="/admin", headers=headers).get_environ()


def test_no_session_is_none(browser: Browser) -> None:
    assert browser.reg.current_sign_in(_environ(browser)) is None
    env = EnvironBuilder(path="/admin", headers={"Cookie": "combinedreg=forged.value"})
    assert browser.reg.current_sign_in(env.get_environ()) is None


def test_after_the_password_and_after_the_mfa(browser: Browser) -> None:
    browser.login("alice")
    state = browser.reg.current_sign_in(_environ(browser))
    assert isinstance(state, SignInState)
    assert state.user_id == "alice" and state.amr == ("pwd",)
    assert state.mfa_time is None and state.password_time == int(browser.clock.now())
    assert not state.mfa_within(600, browser.clock.now())

    mfa_url, form = browser.at_mfa_with_totp("alice")
    at_mfa = browser.reg.current_sign_in(_environ(browser))
    assert at_mfa is not None and at_mfa.amr == ("pwd",)  # the MFA step is not passed yet
    assert browser.post(mfa_url, data=form).status_code == 303
    done = browser.reg.current_sign_in(_environ(browser))
    assert done is not None and "mfa" in done.amr and "otp" in done.amr
    assert done.mfa_time == int(browser.clock.now()) == done.auth_time
    assert done.acr == browser.reg.config.acr.mfa
    assert done.mfa_within(600, browser.clock.now() + 600)
    assert not done.mfa_within(600, browser.clock.now() + 601)


def test_only_this_browsers_sign_in_and_nothing_written(
    make_browser: Callable[..., Browser],
) -> None:
    alice = make_browser()
    alice.login("alice")
    bob = Browser(alice.reg, alice.host, alice.clock)  # another browser on the same IdP
    bob.login("bob")
    store = alice.reg.store
    before = store.load_session(alice.client.get_cookie("combinedreg").value)  # type: ignore[union-attr]
    state_a = alice.reg.current_sign_in(_environ(alice))
    state_b = alice.reg.current_sign_in(_environ(bob))
    assert state_a is not None and state_a.user_id == "alice"
    assert state_b is not None and state_b.user_id == "bob"
    after = store.load_session(alice.client.get_cookie("combinedreg").value)  # type: ignore[union-attr]
    assert before == after


def test_a_disabled_user_is_none(browser: Browser) -> None:
    browser.login("alice")
    directory = browser.reg.directory
    original = directory.get_user

    def disabled(user_id: str) -> DirectoryUser | None:
        user = original(user_id)
        return None if user is None else dataclasses.replace(user, enabled=False)

    directory.get_user = disabled  # type: ignore[method-assign]
    assert browser.reg.current_sign_in(_environ(browser)) is None
