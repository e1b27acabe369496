"""Config files: every rule reports its path and what was expected; a bad config never loads."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from oidc_combinedreg import ConfigError, load_config, parse_config
from oidc_combinedreg.cli import main
from oidc_combinedreg.crypto import generate_key

KEY = generate_key()


def minimal(**sections: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"secrets": {"encryption_keys": [KEY]}}
    data.update(sections)
    return data


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return [str(p) for p in info.value.problems]


def test_the_minimal_config_loads_with_secure_defaults() -> None:
    config = parse_config(minimal())
    assert config.web.prefix == "/security-info"
    assert config.web.secure_cookies is True
    assert config.web.cookie_name == "__Host-combinedreg"
    assert config.general.environment == "production"
    assert config.throttle.max_consecutive_failures == 100
    assert config.policies.methods["security_questions"].enabled is False  # type: ignore[index]
    assert config.storage.sqlite_synchronous == "normal"


def test_sqlite_synchronous_full_is_read() -> None:
    config = parse_config(minimal(storage={"sqlite": {"synchronous": "full"}}))
    assert config.storage.sqlite_synchronous == "full"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            minimal(web={"prefix": 3}),
            "web.prefix: expected a string, got an integer",
            id="wrong type names the path and the type",
        ),
        pytest.param(
            minimal(storage={"sqlite": {"path": 5}}),
            "storage.sqlite.path: expected a string, got an integer",
            id="nested table",
        ),
        pytest.param(
            minimal(storage={"sqlite": {"synchronous": "off"}}),
            "storage.sqlite.synchronous: expected one of 'normal', 'full', got 'off'",
            id="sqlite synchronous other than normal or full",
        ),
        pytest.param(minimal(web={"prefx": "/x"}), "web.prefx: unknown key", id="unknown key"),
        pytest.param(minimal(bogus={}), "bogus: unknown key", id="unknown top-level table"),
        pytest.param(
            minimal(web={"prefix": "security"}),
            "web.prefix: expected a path starting with '/', got 'security'",
            id="relative path",
        ),
        pytest.param(
            minimal(web={"prefix": "/x/"}),
            "web.prefix: expected no trailing '/', got '/x/'",
            id="trailing slash",
        ),
        pytest.param(
            minimal(web={"authorize_path": "/security-info/authorize"}),
            "web.authorize_path: expected a path outside the middleware's prefix",
            id="authorize path inside the prefix",
        ),
        pytest.param(
            minimal(web={"secure_cookies": False}),
            "web.secure_cookies: expected true when general.environment is 'production'",
            id="insecure cookies in production",
        ),
        pytest.param(
            minimal(web={"session_ttl": 10}),
            "web.session_ttl: expected an integer from 60 to 86400, got 10",
            id="out of range",
        ),
        pytest.param(
            minimal(web={"secure_cookies": "yes"}),
            "web.secure_cookies: expected a boolean (true or false), got a string",
            id="boolean as a string",
        ),
        pytest.param(
            minimal(general={"environment": "staging"}),
            "general.environment: expected one of 'development', 'production', got 'staging'",
            id="enum value",
        ),
        pytest.param(
            {},
            "secrets: expected encryption_keys or key_file (generate one: combinedreg generate-key)",
            id="no encryption key",
        ),
        pytest.param(
            minimal(secrets={"encryption_keys": ["short"]}),
            "secrets.encryption_keys: key 0:",
            id="bad key",
        ),
        pytest.param(
            minimal(policies={"sspr": {"methods_required": 3}}),
            "policies.sspr.methods_required: expected an integer from 1 to 2, got 3",
            id="policy range",
        ),
        pytest.param(
            minimal(policies={"sspr": {"methods": ["webauthn"]}}),
            "policies.sspr.methods: 'webauthn' cannot be used for password reset",
            id="a method that cannot reset passwords",
        ),
        pytest.param(
            minimal(policies={"sspr": {"enabled_for": "selected"}}),
            'policies.sspr.groups: expected at least one group when enabled_for = "selected"',
            id="selected without groups",
        ),
        pytest.param(
            minimal(policies={"methods": {"carrier_pigeon": {}}}),
            "policies.methods.carrier_pigeon: unknown method",
            id="unknown method kind",
        ),
        pytest.param(
            minimal(policies={"mfa_registration": {"deadline": "soon"}}),
            "policies.mfa_registration.deadline: expected a TOML date such as 2027-01-31",
            id="deadline not a date",
        ),
        pytest.param(
            minimal(policies={"wizard_preference": ["totp", "totp"]}),
            "policies.wizard_preference: [1]: 'totp' is listed twice",
            id="duplicate preference",
        ),
        pytest.param(
            minimal(throttle={"max_consecutive_failures": 1000}),
            "throttle.max_consecutive_failures: expected an integer from 3 to 100, got 1000",
            id="throttle above NIST's 100",
        ),
    ],
)
def test_each_rule_names_its_path(data: dict[str, Any], expected: str) -> None:
    found = problems(data)
    assert any(p.startswith(expected) for p in found), found


def test_every_error_is_reported_at_once() -> None:
    found = problems({"web": {"prefix": 1, "session_ttl": "x"}, "nope": 1})
    assert len(found) >= 4  # prefix, session_ttl, nope, secrets


def test_generated_keys_only_in_development(tmp_path: Path) -> None:
    data: dict[str, Any] = {"secrets": {"key_file": str(tmp_path / "k"), "generate_missing": True}}
    assert any("generate_missing" in p for p in problems(data))
    data["general"] = {"environment": "development"}
    data["web"] = {"secure_cookies": False}
    parse_config(data)
    assert (tmp_path / "k").read_text().strip()
    assert oct((tmp_path / "k").stat().st_mode & 0o777) == "0o600"


def test_toml_syntax_errors_are_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[web\nprefix = ")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "not valid TOML" in str(info.value)


def test_check_config_cli_prints_errors_and_exits_non_zero(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[web]\nprefix = 3\n[storage.sqlite]\nbogus = 1\n")
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 1
    assert "error: web.prefix: expected a string, got an integer" in result.output
    assert "error: storage.sqlite.bogus: unknown key" in result.output


def test_check_config_cli_says_ok_and_warns(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'[secrets]\nencryption_keys = ["{KEY}"]\n')
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("ok")
    assert (
        "warning: conditional_access: no policy that is on targets the user action" in result.output
    )


def test_the_example_idp_config_is_valid() -> None:
    path = Path(__file__).resolve().parents[2] / "example_idp" / "combinedreg.toml"
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 0 and result.output.strip() == "ok", result.output


def _load_generated_key(path: str, out: Any) -> None:
    config = parse_config(
        {
            "general": {"environment": "development"},
            "web": {"secure_cookies": False},
            "secrets": {"key_file": path, "generate_missing": True},
        }
    )
    out.put(config.secrets.encryption_keys[0])


def test_workers_starting_together_generate_one_key(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    path = str(tmp_path / "keys")
    workers = [ctx.Process(target=_load_generated_key, args=(path, out)) for _ in range(6)]
    for w in workers:
        w.start()
    keys = {out.get(timeout=60) for _ in workers}
    for w in workers:
        w.join()
    assert len(keys) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["keys"]  # no temporary file left behind


def test_questions_users_write_cannot_be_the_only_reset_method() -> None:
    """They are asked only after another method (they would show that an account exists)."""
    own = {"questions": {"allow_custom": True}}
    alone = {"allow_questions_alone": True}
    found = problems(minimal(methods=own, policies={"sspr": alone}))
    assert len(found) == 1 and found[0].startswith("policies.sspr.allow_questions_alone:")
    assert "methods.questions.allow_custom" in found[0]
    # Either one alone is fine, and so are both where a reset needs two methods anyway.
    parse_config(minimal(methods=own))
    parse_config(minimal(policies={"sspr": alone}))
    parse_config(minimal(methods=own, policies={"sspr": {**alone, "methods_required": 2}}))
