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


def library_path():
    """OPENCODE_SHARE_LIB if set (it must name a file), else the copy inside this package."""
    named = os.environ.get("OPENCODE_SHARE_LIB")
    if named:
        if not os.path.isfile(named):
            raise OSError(f"OPENCODE_SHARE_LIB names {named!r}, which is not a file")
        return named
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), LIBRARY_FILE)


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
    lib = ctypes.CDLL(path)
    for name, (restype, argtypes) in SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib
