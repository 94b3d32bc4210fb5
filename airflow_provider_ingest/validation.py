"""Input checks shared by the operators: each error names the field, before any remote call."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, cast

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")  # fullmatch: "$" would let "name\n" through
# AWS bucket naming rules the character pattern above cannot express: such names can never exist,
# so they are refused here rather than reaching S3 (or a service that reads S3) as a failed call.
# (Reserved suffixes such as -s3alias are left alone: access point aliases work as bucket names.)
_IP_ADDRESS = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def require(value: Any, field: str) -> Any:
    if value is None or (isinstance(value, str | list | tuple | dict) and not value):
        raise ValueError(f"{field}: a value is required")
    return value


def check_type(value: Any, types: Any, field: str) -> Any:
    """``types``: a type, a tuple of types or a union (``list | tuple``)."""
    if not isinstance(value, types):
        members = types if isinstance(types, tuple) else getattr(types, "__args__", None) or (types,)
        names = " or ".join(t.__name__ for t in members)
        raise ValueError(f"{field}: expected {names}, got {type(value).__name__}")
    return value


def check_choice(value: Any, choices: Iterable[str], field: str) -> str:
    allowed = sorted(choices)
    if value not in allowed:
        raise ValueError(f"{field}: {value!r} is not one of {', '.join(allowed)}")
    return cast(str, value)  # equal to one of ``choices``


def check_bucket(bucket: Any, field: str) -> str:
    check_type(require(bucket, field), str, field)
    if (
        not _BUCKET.fullmatch(bucket)
        or ".." in bucket
        or _IP_ADDRESS.fullmatch(bucket)
        or bucket.startswith(_RESERVED_PREFIXES)
    ):
        raise ValueError(f"{field}: {bucket!r} is not a valid S3 bucket name")
    return cast(str, bucket)  # check_type made sure


def check_int(value: Any, field: str, low: int, high: int | None = None) -> int:
    """An integer (not a bool) in ``[low, high]``."""
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or value < low
        or (high is not None and value > high)
    ):
        bounds = f">= {low}" if high is None else f"from {low} to {high}"
        raise ValueError(f"{field}: expected an integer {bounds}, got {value!r}")
    return value


def parse_s3_uri(uri: Any, field: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``; the key may be empty or a folder."""
    check_type(require(uri, field), str, field)
    match = re.fullmatch(r"s3://([^/]+)/?(.*)", uri)  # "." stops at a newline: "key\n" is refused
    if not match:
        raise ValueError(f"{field}: {uri!r} is not an s3://bucket/key URI")
    check_bucket(match.group(1), field)
    return match.group(1), match.group(2)


def parse_s3_object_uri(uri: Any, field: str) -> tuple[str, str]:
    """``s3://bucket/key`` naming one object: an empty key or a folder (``.../``) is refused, since
    reading it would only fail at S3 (or at the service that reads it)."""
    bucket, key = parse_s3_uri(uri, field)
    if not key or key.endswith("/"):
        raise ValueError(f"{field}: {uri!r} does not name an object (s3://bucket/key)")
    return bucket, key


def exactly_one(field_values: dict[str, Any]) -> str:
    """The name of the single option given; error naming all of them otherwise."""
    given = [name for name, value in field_values.items() if value not in (None, "", [], ())]
    if len(given) != 1:
        names = ", ".join(field_values)
        found = f" ({', '.join(given)} given)" if given else ""
        raise ValueError(f"exactly one of {names} is required{found}")
    return given[0]


def check_path_segment(value: Any, field: str) -> str:
    """``value`` when it can be one URL path segment; a ValueError naming ``field`` otherwise.

    Empty, ``.``, ``..``, or holding ``/``, ``\\`` or a control character is refused even though
    it would be quoted: a server or proxy may decode and normalise it into another resource.
    Operators and sensors call it on their ids before any remote call."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field}: expected a non-empty string, got {value!r}")
    if value in (".", "..") or "/" in value or "\\" in value or _CONTROL.search(value):
        raise ValueError(
            f"{field}: {value!r} cannot be a URL path segment (no '/', '\\', '.', '..' or control characters)"
        )
    return value
