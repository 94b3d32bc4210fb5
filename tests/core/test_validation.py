"""Input checks the operators run before any remote call: what each accepts, what it returns, and
the exact error, which must name the field so a DAG author sees which argument is wrong."""

from __future__ import annotations

import pytest

from airflow_provider_ingest.validation import (
    check_bucket,
    check_choice,
    check_int,
    check_path_segment,
    check_type,
    exactly_one,
    parse_s3_object_uri,
    parse_s3_uri,
    require,
)


def error_of(fn, *args) -> str:
    with pytest.raises(ValueError) as info:
        fn(*args)
    return str(info.value)


# --- require -------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [None, "", [], (), {}])
def test_require_refuses_missing_and_empty_values(value):
    assert error_of(require, value, "table_name") == "table_name: a value is required"


@pytest.mark.parametrize("value", ["x", ["a"], ("a",), {"k": 1}, 0, False, 0.0, set()])
def test_require_returns_any_other_value_unchanged(value):
    assert require(value, "field") is value


# --- check_type ----------------------------------------------------------------------------------
def test_check_type_returns_the_value_of_the_right_type():
    value = ["a"]
    assert check_type(value, list, "uris") is value
    assert check_type(value, list | tuple, "uris") is value
    assert check_type(("a",), list | tuple, "uris") == ("a",)
    assert check_type(True, bool, "sync") is True


def test_check_type_names_the_field_the_expected_and_the_given_type():
    assert error_of(check_type, "yes", bool, "sync") == "sync: expected bool, got str"
    assert (
        error_of(check_type, None, dict, "format_settings") == "format_settings: expected dict, got NoneType"
    )


def test_check_type_takes_a_tuple_of_types_as_isinstance_does():
    assert check_type(("a",), (list, tuple), "uris") == ("a",)
    assert error_of(check_type, "a", (list, tuple), "prefixes") == "prefixes: expected list or tuple, got str"


def test_check_type_names_every_member_of_a_union():
    assert error_of(check_type, "a", list | tuple, "prefixes") == "prefixes: expected list or tuple, got str"
    assert error_of(check_type, 1.5, str | int | None, "f") == "f: expected str or int or NoneType, got float"


# --- check_choice --------------------------------------------------------------------------------
def test_check_choice_returns_an_allowed_value():
    assert check_choice("reimport", {"import", "reimport"}, "operation") == "reimport"
    assert check_choice("a", iter(["b", "a"]), "mode") == "a"  # any iterable, read once


def test_check_choice_lists_the_choices_sorted():
    message = error_of(check_choice, "update", ("reimport", "import", "delete"), "operation")
    assert message == "operation: 'update' is not one of delete, import, reimport"


def test_check_choice_is_exact():
    assert error_of(check_choice, "Import", ["import"], "operation") == (
        "operation: 'Import' is not one of import"
    )
    assert error_of(check_choice, None, ["import"], "operation") == "operation: None is not one of import"


# --- check_bucket --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bucket",
    [
        "abc",  # the shortest name
        "a" * 63,  # the longest
        "my-bucket.logs-2024",
        "0bucket9",
        "1.2.3",  # not four numbers: not an IP address
        "1.2.3.4.5",
        "1234.1.1.1",  # a part of four digits: not an IP address
        "1.2.3.4x",
        "my-ap-abc123-s3alias",  # an access point alias works as a bucket name
        "axn--b",  # the reserved prefixes only at the start
        "bsthree-x",
    ],
)
def test_check_bucket_accepts_valid_names(bucket):
    assert check_bucket(bucket, "bucket") == bucket


@pytest.mark.parametrize(
    "bucket",
    [
        "ab",  # too short
        "a" * 64,  # too long
        "My-Bucket",  # upper case
        "-bucket",
        "bucket-",
        ".bucket",
        "bucket.",
        "buck_et",
        "buck et",
        "a..b",
        "192.168.1.1",  # formatted as an IP address
        "0.0.0.0",
        "999.999.999.999",
        "xn--bucket",
        "sthree-bucket",
        "amzn-s3-demo-bucket",
        "bucket\n",  # a trailing newline (e.g. a templated value read from a file)
        "192.168.1.1\n",
    ],
)
def test_check_bucket_refuses_names_s3_never_has(bucket):
    assert (
        error_of(check_bucket, bucket, "s3_bucket") == f"s3_bucket: {bucket!r} is not a valid S3 bucket name"
    )


def test_check_bucket_refuses_a_missing_or_non_string_bucket_first():
    assert error_of(check_bucket, "", "s3_bucket") == "s3_bucket: a value is required"
    assert error_of(check_bucket, None, "s3_bucket") == "s3_bucket: a value is required"
    assert error_of(check_bucket, ["abc"], "s3_bucket") == "s3_bucket: expected str, got list"


# --- check_int -----------------------------------------------------------------------------------
def test_check_int_accepts_the_bounds_themselves():
    assert check_int(1, "n", 1) == 1
    assert check_int(10**9, "n", 1) == 10**9
    assert check_int(0, "n", 0, 5) == 0
    assert check_int(5, "n", 0, 5) == 5
    assert check_int(-3, "n", -3, -1) == -3


def test_check_int_with_only_a_lower_bound():
    assert error_of(check_int, 0, "poll_interval", 1) == "poll_interval: expected an integer >= 1, got 0"


@pytest.mark.parametrize("value", [-1, 6, 2.0, "3", None, True, False])
def test_check_int_refuses_outside_the_range_or_not_an_integer(value):
    assert error_of(check_int, value, "batch_size", 0, 5) == (
        f"batch_size: expected an integer from 0 to 5, got {value!r}"
    )


# --- parse_s3_uri / parse_s3_object_uri ---------------------------------------------------------
@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket", ("bucket", "")),
        ("s3://bucket/", ("bucket", "")),
        ("s3://bucket/folder/", ("bucket", "folder/")),
        ("s3://bucket/a/b.json", ("bucket", "a/b.json")),
        ("s3://bucket//a", ("bucket", "/a")),  # only the one separating slash is dropped
    ],
)
def test_parse_s3_uri_splits_bucket_and_key(uri, expected):
    assert parse_s3_uri(uri, "source") == expected


@pytest.mark.parametrize(
    "uri",
    [
        "bucket/key",
        "s3:/bucket/key",
        "S3://bucket/key",
        "s3:///key",
        "s3://",
        " s3://bucket/k",
        "s3://b/a\nb",
        "s3://bucket/key\n",  # not read as s3://bucket/key: a different object
        "s3://bucket/\n",
    ],
)
def test_parse_s3_uri_refuses_what_is_not_an_s3_uri(uri):
    assert error_of(parse_s3_uri, uri, "source") == f"source: {uri!r} is not an s3://bucket/key URI"


def test_parse_s3_uri_checks_the_bucket_naming_the_field():
    assert error_of(parse_s3_uri, "s3://Bad_Bucket/k", "source") == (
        "source: 'Bad_Bucket' is not a valid S3 bucket name"
    )
    assert error_of(parse_s3_uri, "s3://bucket\n", "source") == (
        "source: 'bucket\\n' is not a valid S3 bucket name"
    )
    assert error_of(parse_s3_uri, "", "source") == "source: a value is required"
    assert error_of(parse_s3_uri, 3, "source") == "source: expected str, got int"


def test_parse_s3_object_uri_returns_bucket_and_key():
    assert parse_s3_object_uri("s3://bucket/a/b.csv", "file") == ("bucket", "a/b.csv")


@pytest.mark.parametrize("uri", ["s3://bucket", "s3://bucket/", "s3://bucket/folder/"])
def test_parse_s3_object_uri_refuses_a_bucket_or_folder(uri):
    assert (
        error_of(parse_s3_object_uri, uri, "file")
        == f"file: {uri!r} does not name an object (s3://bucket/key)"
    )


def test_parse_s3_object_uri_checks_the_uri_first():
    assert (
        error_of(parse_s3_object_uri, "http://x/y", "file")
        == "file: 'http://x/y' is not an s3://bucket/key URI"
    )


# --- exactly_one ---------------------------------------------------------------------------------
def test_exactly_one_returns_the_option_given():
    assert exactly_one({"uris": None, "prefixes": ["a/"], "pattern": ""}) == "prefixes"
    # 0, False and {} are values a caller gave; only None and empties are "not given"
    assert exactly_one({"a": 0, "b": None}) == "a"
    assert exactly_one({"a": [], "b": False}) == "b"
    assert exactly_one({"a": (), "b": {}}) == "b"


def test_exactly_one_names_all_options_when_none_is_given():
    message = error_of(exactly_one, {"uris": None, "prefixes": [], "pattern": "", "x": ()})
    assert message == "exactly one of uris, prefixes, pattern, x is required"


def test_exactly_one_names_the_options_given_when_several_are():
    message = error_of(exactly_one, {"uris": ["s3://b/k"], "prefixes": ["a/"], "pattern": "*.json"})
    assert message == "exactly one of uris, prefixes, pattern is required (uris, prefixes, pattern given)"
    message = error_of(exactly_one, {"uris": ["s3://b/k"], "prefixes": None, "pattern": "*.json"})
    assert message == "exactly one of uris, prefixes, pattern is required (uris, pattern given)"


# --- check_path_segment --------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["job-1", "...", ".a", "a.", "a b", "é", "a~b%2F", "x" * 500, " ", "\x80"])
def test_check_path_segment_accepts_one_segment(value):
    assert check_path_segment(value, "job_id") == value


def test_check_path_segment_takes_an_integer_id_as_text():
    assert check_path_segment(42, "batch_id") == "42"
    assert check_path_segment(0, "batch_id") == "0"


@pytest.mark.parametrize("value", ["", None, True, False, 1.5, ["a"], b"id"])
def test_check_path_segment_refuses_what_is_not_a_non_empty_string(value):
    assert (
        error_of(check_path_segment, value, "job_id") == f"job_id: expected a non-empty string, got {value!r}"
    )


@pytest.mark.parametrize(
    "value", [".", "..", "a/b", "/", "../x", "a\\b", "\\", "a\x00", "\x1fa", "a\x7fb", "a\nb", "\t", "a\rb"]
)
def test_check_path_segment_refuses_what_could_name_another_resource(value):
    assert error_of(check_path_segment, value, "file_name") == (
        f"file_name: {value!r} cannot be a URL path segment (no '/', '\\', '.', '..' or control characters)"
    )
