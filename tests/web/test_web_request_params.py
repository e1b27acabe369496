"""``request_params`` (web/flow.py): the guard's reading of an authorization request's query is
``parse_qsl``'s (blank values left out, the first value of each name), without its per-pair
calls (issue 22)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oidc_combinedreg.web.flow import request_params


def _reference(query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=False):
        params.setdefault(name, value)
    return params


CASES = [
    "",
    "&",
    "&&a=1&&",
    "a",
    "a=",
    "=x",
    "a=1&a=2",
    "a=&a=2",  # a blank first value does not count: the second is the first kept
    "a=b=c",
    "a+b=c+d",
    "a%20b=c%2Bd",
    "redirect_uri=https%3A%2F%2Frp.example%2Fcb%3Fx%3D1&scope=openid+profile",
    "bad=%zz&half=%4&end=%",
    "utf8=%C3%A9t%C3%A9&broken=%C3%28&latin=%E9",
    "a;b=1&c=2",  # ';' is no separator (Python 3.10+)
    "sp ace=v al",
    "nul=%00&plus=%2B+",
    "client_id=demo&response_type=code&scope=openid&state=s&nonce=n&max_age=0",
]


@pytest.mark.parametrize("query", CASES)
def test_the_same_as_parse_qsl(query: str) -> None:
    assert request_params(query) == _reference(query)


_PART = st.text(alphabet=st.sampled_from("ab=&+%;é 0F2C3"), max_size=30)


@settings(max_examples=500, deadline=None)
@given(_PART)
def test_the_same_as_parse_qsl_on_any_query(query: str) -> None:
    assert request_params(query) == _reference(query)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12)), max_size=8))
def test_the_same_as_parse_qsl_on_encoded_pairs(pairs: list[tuple[str, str]]) -> None:
    query = urlencode(pairs)
    assert request_params(query) == _reference(query)
