"""The manage page offers "Delete" only where the delete would go through: the replace-before-
remove policy answers, with its reason, in the HTML and the JSON twin alike (not the method
kind's rule, which said "deletable" for a delete that then got 409)."""

from __future__ import annotations

from test_web_manage import SECURITY_INFO, add_record, enrolled, manage
from webtest import Browser, location

from oidc_combinedreg.methods.kinds import MethodKind


def test_the_last_mfa_method_is_not_offered_for_deletion_and_says_why(browser: Browser) -> None:
    enrolled(browser)  # alice: MFA registration enforced; one authenticator app
    [app] = browser.reg.store.list_methods("alice")
    [listed] = manage(browser)["methods"]
    assert listed["deletable"] is False
    assert listed["delete_refused"] == ["mfa"]
    assert listed["delete_url"] is None
    assert listed["replace_first_url"] == f"/security-info/methods/{app.id}/delete"
    html = browser.get(SECURITY_INFO).get_data(as_text=True)
    assert f'href="/security-info/methods/{app.id}/delete" class="danger-link"' not in html
    assert "Add another method first" in html
    # The delete page says so at once (GET), with what to add, and offers no Delete button.
    page = browser.get(listed["replace_first_url"]).get_data(as_text=True)
    assert "This is your last one." in page and "/security-info/add/webauthn" in page
    assert 'type="submit" class="danger"' not in page
    twin = browser.get_json(listed["replace_first_url"]).get_json()
    assert twin["refused"]["shortfalls"] == ["mfa"]


def test_with_a_second_mfa_method_both_are_deletable(browser: Browser) -> None:
    enrolled(browser)
    phone = add_record(browser, "alice", MethodKind.MOBILE_PHONE, phone="+14255550167")
    listed = {m["id"]: m for m in manage(browser)["methods"]}
    assert all(m["deletable"] and m["delete_refused"] == [] for m in listed.values())
    assert listed[phone.id]["delete_url"] == f"/security-info/methods/{phone.id}/delete"
    assert listed[phone.id]["replace_first_url"] is None
    # What the list offers goes through.
    url = listed[phone.id]["delete_url"]
    r = browser.post_json(url, {"csrf_token": browser.csrf(url)})
    assert location(r) == "/security-info/?done=deleted"
    # And now the one left is refused again, by the same answer.
    [left] = manage(browser)["methods"]
    assert left["deletable"] is False and left["delete_refused"] == ["mfa"]
