"""The status names of the Python package are the header's: parse include/opencode_share.h."""

import os
import re

from opencode_share import _native

HEADER = os.environ.get(
    "OPENCODE_SHARE_HEADER",
    os.path.join(os.path.dirname(__file__), "..", "..", "..", "include", "opencode_share.h"),
)


def header_statuses():
    with open(HEADER, encoding="utf-8") as f:
        text = f.read()
    body = re.search(r"typedef enum share_status \{(.*?)\} share_status;", text, re.S)
    assert body, f"no share_status enum in {HEADER}"
    return {int(value): name for name, value in re.findall(r"\b(SHARE_[A-Z_]+) = (\d+),", body.group(1))}


def test_status_names_match_the_header():
    statuses = header_statuses()
    assert len(statuses) >= 10
    assert _native.STATUS_NAMES == statuses


def test_every_declared_function_is_in_the_header():
    with open(HEADER, encoding="utf-8") as f:
        declared = set(re.findall(r"\b(share_[a-z_]+)\(", f.read()))
    assert set(_native.SIGNATURES) <= declared, set(_native.SIGNATURES) - declared
