"""App passwords: generation, normalization, who may have them (no I/O)."""

from __future__ import annotations

import pytest

from oidc_combinedreg.directory import PerUserMfa
from oidc_combinedreg.exceptions import InvalidInput
from oidc_combinedreg.methods.app_passwords import (
    ALPHABET,
    LENGTH,
    AppPasswordMethod,
    fingerprint,
    normalize,
)


def test_generated_passwords_are_16_unambiguous_characters_and_differ() -> None:
    made = {AppPasswordMethod.register_begin(name="Mail").password for _ in range(200)}
    assert len(made) == 200
    for password in made:
        assert len(password) == LENGTH and set(password) <= set(ALPHABET)
    assert not set("0o1li") & set(ALPHABET)


def test_display_groups_by_four_and_normalizes_back() -> None:
    setup = AppPasswordMethod.register_begin(name="  Phone   mail ")
    assert setup.name == "Phone mail"
    assert [len(g) for g in setup.display.split(" ")] == [4, 4, 4, 4]
    assert normalize(setup.display.upper()) == setup.password
    assert normalize(setup.display.replace(" ", "-")) == setup.password


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("abcd", id="too short"),
        pytest.param("abcdefghjkmnpqrs0", id="17 characters"),
        pytest.param("abcdefghjkmnpqr0", id="a zero is never generated"),
        pytest.param("ａｂｃｄefghjkmnpqrs", id="full-width letters"),
        pytest.param("x" * 100_000, id="100 KB"),
        pytest.param(None, id="not text"),
    ],
)
def test_text_that_cannot_be_an_app_password_is_refused_before_hashing(text: object) -> None:
    assert normalize(text) is None
    assert AppPasswordMethod.candidates({"m1": "abcd"}, text) == (None, [])


def test_candidates_narrow_by_fingerprint() -> None:
    password = AppPasswordMethod.register_begin(name="x").password
    fps = {"mine": fingerprint(password), "other": "zzzz"}
    assert AppPasswordMethod.candidates(fps, password) == (password, ["mine"])


@pytest.mark.parametrize(
    ("state", "allowed"),
    [
        pytest.param(PerUserMfa.ENFORCED, True, id="per-user MFA enforced -> may register"),
        pytest.param(PerUserMfa.ENABLED, False, id="enabled only -> refused"),
        pytest.param(PerUserMfa.DISABLED, False, id="MFA only through CA -> refused"),
    ],
)
def test_only_enforced_users_may_register(state: PerUserMfa, allowed: bool) -> None:
    assert AppPasswordMethod.may_register(state) is allowed


@pytest.mark.parametrize(
    "name", [pytest.param("", id="empty"), pytest.param("n" * 65, id="65 chars")]
)
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        AppPasswordMethod.register_begin(name=name)
