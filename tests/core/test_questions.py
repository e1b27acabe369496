"""Security questions: normalization and the rules of a set (table-driven), hashing, asking and
checking, throttling (SECURITY.md case 36)."""

from __future__ import annotations

import json

import pytest
from codes_env import Env, make_env

from oidc_combinedreg.exceptions import (
    ConfigError,
    InvalidInput,
    LimitReached,
    RateLimited,
    VerificationFailed,
)
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.methods.questions import (
    DEFAULT_QUESTIONS,
    QuestionAnswer,
    QuestionsConfig,
    check_answer_set,
    normalize_answer,
)
from oidc_combinedreg.policy.config import PolicyConfig

Q = DEFAULT_QUESTIONS


@pytest.mark.parametrize(
    ("typed", "normalized"),
    [
        pytest.param("Paris", "paris", id="case"),
        pytest.param("  paris  ", "paris", id="surrounding spaces"),
        pytest.param("New   York", "new york", id="repeated inner spaces"),
        pytest.param("new\tyork\n", "new york", id="tabs and newlines"),
        pytest.param("ＰＡＲＩＳ", "paris", id="full-width letters"),
        pytest.param("ﬁdo", "fido", id="ligature"),
        pytest.param("Straße", "strasse", id="german sharp s folds"),
        pytest.param("Ｒｅｘ　２", "rex 2", id="full-width digits and ideographic space"),
        pytest.param("Zoë", "zoë", id="accents are kept"),
    ],
)
def test_answers_are_normalized(typed: str, normalized: str) -> None:
    assert normalize_answer(typed) == normalized


CFG = QuestionsConfig(allow_custom=True)


def _pairs(*answers: str) -> list[QuestionAnswer]:
    return [QuestionAnswer(question=Q[i], answer=a) for i, a in enumerate(answers)]


@pytest.mark.parametrize(
    ("pairs", "field"),
    [
        pytest.param(_pairs("rex", "lyon", "golf"), None, id="three good answers pass"),
        pytest.param(_pairs("rex", "ly", "golf"), "answer1", id="two characters are too short"),
        pytest.param(_pairs("rex", "  l  ", "golf"), "answer1", id="short after normalization"),
        pytest.param(_pairs("rex", "REX", "golf"), "answer1", id="the same answer twice"),
        pytest.param(_pairs("rex", "lyon", "R E X"), None, id="different once spaces count"),
        pytest.param(_pairs("rex", "lyon"), "answers", id="too few answers"),
        pytest.param(
            [
                QuestionAnswer(question=Q[0], answer="rex"),
                QuestionAnswer(question=Q[0], answer="lyon"),
                QuestionAnswer(question=Q[2], answer="golf"),
            ],
            "question1",
            id="the same question twice",
        ),
        pytest.param(
            [
                QuestionAnswer(question="Not on the list?", answer="rex"),
                QuestionAnswer(question=Q[1], answer="lyon"),
                QuestionAnswer(question=Q[2], answer="golf"),
            ],
            "question0",
            id="a question not on the list",
        ),
        pytest.param(
            [
                QuestionAnswer(
                    question="Favourite teacher?", answer="Favourite teacher Smith", custom=True
                ),
                QuestionAnswer(question=Q[1], answer="lyon"),
                QuestionAnswer(question=Q[2], answer="golf"),
            ],
            "answer0",
            id="an answer containing the question",
        ),
        pytest.param(
            [
                QuestionAnswer(question="Favourite teacher?", answer="Mrs Smith", custom=True),
                QuestionAnswer(question=Q[1], answer="lyon"),
                QuestionAnswer(question=Q[2], answer="golf"),
            ],
            None,
            id="a custom question when allowed",
        ),
        pytest.param(
            _pairs("rex", "x" * 101, "golf"), "answer1", id="an answer over 100 characters"
        ),
    ],
)
def test_the_rules_of_a_set(pairs: list[QuestionAnswer], field: str | None) -> None:
    if field is None:
        assert len(check_answer_set(pairs, count=3, config=CFG)) == 3
    else:
        with pytest.raises(InvalidInput) as caught:
            check_answer_set(pairs, count=3, config=CFG)
        assert caught.value.field == field


def test_custom_questions_are_refused_unless_the_admin_allows_them() -> None:
    pairs = [
        QuestionAnswer(question="My own?", answer="abc", custom=True),
        *_pairs("x", "lyon", "golf")[1:],
    ]
    with pytest.raises(InvalidInput) as caught:
        check_answer_set(pairs, count=3, config=QuestionsConfig())
    assert caught.value.field == "question0"


def test_questions_are_off_by_default() -> None:
    assert not PolicyConfig().methods[MethodKind.SECURITY_QUESTIONS].enabled


def test_the_admin_list_is_checked() -> None:
    with pytest.raises(ConfigError, match="methods.questions.predefined"):
        make_env(methods={"questions": {"predefined": ["Only one?"]}})


@pytest.fixture
def env() -> Env:
    return make_env(
        policies={
            "methods": {"security_questions": {"enabled": True}},
            "sspr": {"questions_to_register": 4, "questions_to_answer": 3},
        },
    )


ANSWERS = ("Rex", "Lyon", "Golf GTI", "Muse")


def _register(env: Env) -> object:
    pairs = [QuestionAnswer(question=Q[i], answer=a) for i, a in enumerate(ANSWERS)]
    return env.info.questions.register("alice", pairs, ip="192.0.2.9")


def test_answers_are_hashed_and_encrypted_never_stored_or_audited_in_clear(env: Env) -> None:
    record = _register(env)
    stored = env.store.get_method("alice", record.id)  # type: ignore[attr-defined]
    assert stored is not None and stored.kind is MethodKind.SECURITY_QUESTIONS
    blob = stored.secret + json.dumps(dict(stored.data)).encode()
    audit = repr(env.store.list_audit(limit=100)).lower()
    for answer in ANSWERS:
        assert answer.lower().encode() not in blob.lower() and answer.lower() not in audit


def test_a_set_cannot_be_changed_only_deleted_and_registered_again(env: Env) -> None:
    record = _register(env)
    with pytest.raises(LimitReached):
        _register(env)
    assert env.info.delete_method("alice", record.id, ip=None)  # type: ignore[attr-defined]
    _register(env)


def test_reset_asks_n_random_questions_the_same_ones_on_reload(env: Env) -> None:
    record = _register(env)
    svc = env.info.questions
    asked, state = svc.ask("alice", record)  # type: ignore[arg-type]
    assert len(asked) == 3 and set(asked) <= set(Q[:4])
    again, _ = svc.ask("alice", record, pending=state)  # type: ignore[arg-type]
    assert again == asked
    answers = {Q[i]: a for i, a in enumerate(ANSWERS)}
    typed = [f"  {answers[q].upper()} " for q in asked]
    svc.check("alice", record, state, typed, ip=None)  # type: ignore[arg-type]


def test_one_wrong_answer_fails_the_whole_set_and_is_throttled(env: Env) -> None:
    record = _register(env)
    svc = env.info.questions
    asked, state = svc.ask("alice", record)  # type: ignore[arg-type]
    answers = {Q[i]: a for i, a in enumerate(ANSWERS)}
    typed = [answers[q] for q in asked]
    typed[-1] = "wrong"
    for _ in range(10):
        with pytest.raises(VerificationFailed):
            svc.check("alice", record, state, typed, ip=None)  # type: ignore[arg-type]
    with pytest.raises(RateLimited):
        svc.check("alice", record, state, [answers[q] for q in asked], ip=None)  # type: ignore[arg-type]


def test_questions_are_never_mfa(env: Env) -> None:
    _register(env)
    assert MethodKind.SECURITY_QUESTIONS not in env.info.verifiers
    assert env.info.mfa_methods("alice") == []
