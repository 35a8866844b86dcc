"""The native library through ctypes: where it is, and the signatures of the calls we make.

Status names are copied from include/opencode_share.h; tests/test_header.py parses the header
and fails when they differ.
"""

import ctypes
import os
from ctypes import POINTER, c_char_p, c_int32, c_uint32, c_void_p

STATUS_NAMES = {
    0: "SHARE_OK",
    1: "SHARE_ERR_INVALID_ARGUMENT",
    2: "SHARE_ERR_NOT_INITIALIZED",
    3: "SHARE_ERR_ALREADY_INITIALIZED",
    4: "SHARE_ERR_NETWORK",
    5: "SHARE_ERR_HTTP_STATUS",
    6: "SHARE_ERR_BAD_RESPONSE",
    7: "SHARE_ERR_TIMEOUT",
    8: "SHARE_ERR_QUEUE_FULL",
    9: "SHARE_ERR_PANIC",
}

LIBRARY_FILE = "libopencode_share.so"

#: void (*share_event_notify)(void *user_data)
EVENT_NOTIFY = ctypes.CFUNCTYPE(None, c_void_p)
#: void (*share_op_callback)(void *user_data, uint32_t op_id, share_status status)
OP_CALLBACK = ctypes.CFUNCTYPE(None, c_void_p, c_uint32, c_int32)


class LibraryMissing(ImportError):
    """The native library cannot be found or loaded: the message says where it was looked for
    and what to do."""


def _checkout_library(package_dir):
    """The release build of the checkout this package's source sits in (src/opencode_share in
    bindings/python, as an editable install uses it), or None."""
    repo = os.path.abspath(os.path.join(package_dir, "..", "..", "..", ".."))
    candidate = os.path.join(repo, "target", "release", LIBRARY_FILE)
    return candidate if os.path.isfile(os.path.join(repo, "Cargo.toml")) else None


def library_path():
    """OPENCODE_SHARE_LIB if set (it must name a file), else the copy inside this package, else
    (a source checkout) the repository's target/release. Raises LibraryMissing when none is there."""
    named = os.environ.get("OPENCODE_SHARE_LIB")
    if named:
        if not os.path.isfile(named):
            raise LibraryMissing(f"OPENCODE_SHARE_LIB names {named!r}, which is not a file")
        return named
    package_dir = os.path.dirname(os.path.abspath(__file__))
    inside = os.path.join(package_dir, LIBRARY_FILE)
    if os.path.isfile(inside):
        return inside
    checkout = _checkout_library(package_dir)
    if checkout is not None and os.path.isfile(checkout):
        return checkout
    looked = inside if checkout is None else f"{inside} and {checkout}"
    raise LibraryMissing(
        f"opencode_share cannot find its native library {LIBRARY_FILE} (looked at {looked}). "
        "This copy of the package was installed without it. Install the wheel, which carries it "
        "(pip install opencode-share, or the wheel scripts/package writes into target/package/), "
        "build it in an opencode-share checkout (cargo build --release), or set "
        "OPENCODE_SHARE_LIB to a libopencode_share.so."
    )


_OUT = POINTER(c_void_p)

#: Every call the wrapper makes: name -> (restype, argtypes).
SIGNATURES = {
    "share_init": (c_int32, [c_char_p]),
    "share_sync": (c_int32, [c_char_p, c_char_p]),
    "share_create": (c_int32, [c_char_p, _OUT]),
    "share_remove": (c_int32, [c_char_p, c_char_p]),
    "share_flush": (c_int32, [c_uint32]),
    "share_shutdown": (c_int32, [c_uint32]),
    "share_stats": (c_int32, [_OUT]),
    "share_list": (c_int32, [_OUT]),
    "share_remove_known": (c_int32, [c_char_p]),
    "share_last_error": (c_char_p, []),
    "share_version": (c_char_p, []),
    "share_string_free": (None, [c_void_p]),
    "share_set_event_callback": (c_int32, [EVENT_NOTIFY, c_void_p]),
    "share_events_take": (c_int32, [_OUT]),
    "share_create_async": (c_int32, [c_char_p, OP_CALLBACK, c_void_p, POINTER(c_uint32)]),
    "share_remove_async": (c_int32, [c_char_p, c_char_p, OP_CALLBACK, c_void_p, POINTER(c_uint32)]),
    "share_flush_async": (c_int32, [c_uint32, OP_CALLBACK, c_void_p, POINTER(c_uint32)]),
    "share_op_take": (c_int32, [c_uint32, _OUT]),
}


def load(path):
    """Loads the library and declares every call in SIGNATURES."""
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise LibraryMissing(f"opencode_share cannot load its native library {path}: {e}") from e
    for name, (restype, argtypes) in SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib
