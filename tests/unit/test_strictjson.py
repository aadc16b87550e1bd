"""Strict JSON: size before parsing, content types, and what pydantic's parser lets through."""

from __future__ import annotations

import sys

import pytest

from common.errors import BodyTooLarge, MalformedMessage, UnsupportedContentType
from common.strictjson import check_content_type, check_size, check_strict_json


def test_a_body_at_the_limit_passes_the_size_check():
    check_size(b"x" * 100, 100)


def test_a_body_over_the_limit_is_refused_without_looking_at_it():
    # Not JSON at all: the size alone decides.
    with pytest.raises(BodyTooLarge, match="101 bytes"):
        check_size(b"\xff" * 101, 100)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "Application/JSON",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        " application/json ; charset=utf-8 ",
    ],
)
def test_json_content_types_with_or_without_utf8_charset_are_accepted(content_type: str):
    check_content_type(content_type)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "text/plain",
        "application/jsonx",
        "application/x-json",
        "text/json",
        "application/json; charset=latin-1",
        "application/json; charset=utf-16",
        "application/json; charset=utf-8; profile=x",
        "application/json; boundary=x",
    ],
)
def test_other_content_types_and_charsets_are_refused(content_type: str | None):
    with pytest.raises(UnsupportedContentType):
        check_content_type(content_type)


def test_a_strict_json_object_passes():
    check_strict_json(b'{"a": 1, "b": {"c": [1, "x", true, null]}, "d": -0}')


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1, "a": 2}',
        b'{"a": {"b": 1, "b": 1}}',
        b'{"a": [{"x": 1}, {"y": 1, "y": 2}]}',
        b'{"a": 1, "\\u0061": 2}',
    ],
    ids=["top", "nested", "in-array", "escaped-alias"],
)
def test_duplicate_keys_are_refused_at_any_depth(body: bytes):
    with pytest.raises(MalformedMessage, match="duplicate JSON key"):
        check_strict_json(body)


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_constants_are_refused(constant: bytes):
    with pytest.raises(MalformedMessage, match="not allowed"):
        check_strict_json(b'{"x": {"y": [' + constant + b"]}}")


@pytest.mark.parametrize("number", [b"1.0", b"1e3", b"-0.5", b"1E-2", b"10.50"])
def test_floats_are_refused_anywhere(number: bytes):
    with pytest.raises(MalformedMessage, match="floating-point"):
        check_strict_json(b'{"deep": [{"n": ' + number + b"}]}")


@pytest.mark.parametrize(
    "body", [b'{"a": "\xff"}', b"\xfe\xff{}", b'{"a": "\xc3"}'], ids=["ff", "bom16", "truncated"]
)
def test_bytes_that_are_not_utf8_are_refused(body: bytes):
    with pytest.raises(MalformedMessage, match="UTF-8"):
        check_strict_json(body)


@pytest.mark.parametrize(
    "body", [b"[]", b'"text"', b"1", b"null", b"true"], ids=["array", "str", "int", "null", "bool"]
)
def test_json_that_is_not_an_object_is_refused(body: bytes):
    with pytest.raises(MalformedMessage, match="object"):
        check_strict_json(body)


@pytest.mark.parametrize("body", [b"", b"{", b"{'a': 1}", b'{"a": 1} x', b"\xef\xbb\xbf{}"])
def test_invalid_json_is_refused(body: bytes):
    with pytest.raises(MalformedMessage, match="not valid JSON"):
        check_strict_json(body)


def test_an_integer_literal_too_long_to_convert_is_malformed():
    with pytest.raises(MalformedMessage):
        check_strict_json(b'{"a": ' + b"1" * 5_000 + b"}")


def test_deeply_nested_json_within_the_size_limit_is_malformed():
    depth = 30_000
    with pytest.raises(MalformedMessage):
        check_strict_json(b'{"a": ' + b"[" * depth + b"]" * depth + b"}")


def test_nesting_is_limited_even_where_a_library_raised_the_recursion_limit():
    # py_ecc (a web3 dependency) sets the process's limit to 100,000 when imported.
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        with pytest.raises(MalformedMessage, match="nested more than"):
            check_strict_json(b'{"a": ' + b"[" * 32 + b"]" * 32 + b"}")
        check_strict_json(b'{"a": ' + b"[" * 31 + b"]" * 31 + b"}")
        # Brackets inside strings are text, not nesting.
        check_strict_json(b'{"a": "' + b"[{" * 100 + b'\\"[["}')
    finally:
        sys.setrecursionlimit(previous)
