"""Security questions: the admin's list, answer normalization and the rules of a set. No I/O.

Not an authenticator (NIST SP 800-63B, OWASP ASVS): off by default, password reset only, never MFA,
and by default never the only method a reset rests on. Answers are normalized before hashing so that
"Paris", " paris " and full-width "ＰＡＲＩＳ" match: Unicode NFKC (width and compatibility forms),
case folding, surrounding spaces stripped and inner runs of white space collapsed to one space.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from ..config.reader import Reader
from ..exceptions import InvalidInput

__all__ = [
    "DEFAULT_QUESTIONS",
    "QuestionAnswer",
    "QuestionsConfig",
    "check_answer_set",
    "normalize_answer",
    "read_questions_config",
]


def N_(msgid: str) -> str:  # noqa: N802 - gettext's "mark for extraction only"
    return msgid


#: the predefined questions unless the admin lists others (msgids: pages translate them)
DEFAULT_QUESTIONS: tuple[str, ...] = (
    N_("In what city did you meet your first spouse or partner?"),
    N_("In what city did your parents meet?"),
    N_("What was the name of your first pet?"),
    N_("What was the make and model of your first car?"),
    N_("What was the first concert you attended?"),
    N_("What is your oldest cousin's first name?"),
    N_("In what city was your first job?"),
    N_("What was the name of the street you grew up on?"),
)

MIN_ANSWER = 3
MAX_ANSWER = 100
MAX_QUESTION = 200
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, kw_only=True, slots=True)
class QuestionsConfig:
    """The ``[methods.questions]`` table (the counts are in ``policies.sspr``)."""

    predefined: tuple[str, ...] = DEFAULT_QUESTIONS
    #: users may write their own questions
    allow_custom: bool = False


def read_questions_config(r: Reader) -> QuestionsConfig:
    predefined = r.str_list("predefined", DEFAULT_QUESTIONS)
    if len(set(predefined)) != len(predefined):
        r.error("predefined", "expected each question once")
    for i, text in enumerate(predefined):
        if not text.strip() or len(text) > MAX_QUESTION:
            r.error("predefined", f"[{i}]: expected a question of 1 to {MAX_QUESTION} characters")
    allow_custom = r.boolean("allow_custom", False)
    if len(predefined) < 5 and not allow_custom:
        r.error("predefined", "expected at least 5 questions (users register up to 5)")
    r.done()
    return QuestionsConfig(predefined=tuple(predefined), allow_custom=allow_custom)


def normalize_answer(text: str) -> str:
    """Width and compatibility forms (NFKC), case, surrounding and repeated spaces."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def _normalize_question(text: str) -> str:
    return normalize_answer(text).rstrip("?").strip()


@dataclass(frozen=True, kw_only=True, slots=True)
class QuestionAnswer:
    #: the question's text (a predefined msgid, or the user's own question)
    question: str
    answer: str
    custom: bool = False


def check_answer_set(
    pairs: Sequence[QuestionAnswer], *, count: int, config: QuestionsConfig
) -> list[tuple[str, str, bool]]:
    """``(question, normalized answer, custom)`` for each pair, or :class:`InvalidInput` naming
    the field at fault (``question<i>`` / ``answer<i>``, from 0) with a message for the user."""
    if len(pairs) != count:
        raise InvalidInput("answers", "Answer %(count)s questions.")
    out: list[tuple[str, str, bool]] = []
    seen_questions: set[str] = set()
    seen_answers: set[str] = set()
    for i, pair in enumerate(pairs):
        question = pair.question.strip()
        if pair.custom:
            if not config.allow_custom:
                raise InvalidInput(f"question{i}", "Choose one of the questions.")
            if len(_normalize_question(question)) < MIN_ANSWER or len(question) > MAX_QUESTION:
                raise InvalidInput(f"question{i}", "Write a question of 3 to 200 characters.")
        elif question not in config.predefined:
            raise InvalidInput(f"question{i}", "Choose one of the questions.")
        key = _normalize_question(question)
        if key in seen_questions:
            raise InvalidInput(f"question{i}", "Choose a different question for each answer.")
        seen_questions.add(key)
        answer = normalize_answer(pair.answer)
        if len(answer) < MIN_ANSWER or len(pair.answer) > MAX_ANSWER:
            raise InvalidInput(f"answer{i}", "Answers need at least 3 characters.")
        if answer in seen_answers:
            raise InvalidInput(f"answer{i}", "Use a different answer for each question.")
        if key in answer:
            raise InvalidInput(f"answer{i}", "The answer can't contain the question.")
        seen_answers.add(answer)
        out.append((question, answer, pair.custom))
    return out
