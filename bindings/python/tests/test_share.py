"""The Python package as installed from the wheel, against the loopback service of conftest.py."""

import asyncio
import importlib.metadata
import os
import threading
import time

import pytest

import opencode_share
from opencode_share import ShareError

SID = "ses_python00000000000000000001"
OTHER = "ses_python00000000000000000002"


def test_the_installed_package_carries_its_own_library():
    assert "site-packages" in opencode_share.__file__, opencode_share.__file__
    assert "OPENCODE_SHARE_LIB" not in os.environ
    lib = opencode_share.library_path()
    assert os.path.dirname(lib) == os.path.dirname(opencode_share.__file__), lib
    # one release: the wheel's metadata, the module and the library it carries
    assert opencode_share.version() == opencode_share.__version__ == importlib.metadata.version("opencode-share")


def test_create_sync_flush_stats_remove(library):
    share = opencode_share.create(SID)
    assert share["url"].endswith("/s/" + SID[-8:])
    assert share["secret"] == library.secret(SID)

    opencode_share.sync(f"session/info/{SID}", {"title": "hello", "share": {"url": share["url"], "secret": share["secret"]}})
    opencode_share.sync(f"session/part/{SID}/msg_1/prt_1", '{"type":"text","text":"as JSON text"}')
    opencode_share.sync(f"session/part/{SID}/msg_1/prt_2", [1, 2.5, None, True])
    opencode_share.sync("not/a/session/key", {"ignored": True})
    opencode_share.flush(5000)

    data = library.data(SID)
    assert data == {
        f"session/info/{SID}": {"title": "hello", "share": {"url": share["url"]}},  # secret stripped
        f"session/part/{SID}/msg_1/prt_1": {"type": "text", "text": "as JSON text"},
        f"session/part/{SID}/msg_1/prt_2": [1, 2.5, None, True],
    }
    stats = opencode_share.stats()
    assert stats["running"] is True
    assert stats["sent"] == 3 and stats["ignored"] == 1 and stats["dropped"] == 0, stats
    assert share["secret"] not in repr(stats)

    opencode_share.remove(SID, share["secret"])
    assert library.data(SID) is None


def test_failures_raise_share_error_with_the_status_name(library):
    with pytest.raises(ShareError) as e:
        opencode_share.sync("session/info", {"a": 1})  # too few segments
    assert e.value.code == "SHARE_ERR_INVALID_ARGUMENT" and e.value.status == 1
    assert "key" in e.value.message

    opencode_share.create(SID)
    with pytest.raises(ShareError) as e:
        opencode_share.sync(f"session/info/{SID}", "{not json")
    assert e.value.code == "SHARE_ERR_INVALID_ARGUMENT"

    with pytest.raises(ShareError) as e:
        opencode_share.init({"url": library.url})
    assert e.value.code == "SHARE_ERR_ALREADY_INITIALIZED"

    with pytest.raises(ShareError) as e:
        opencode_share.remove(OTHER, "wrong-secret")  # the service answers 500, retried, then given up
    assert e.value.code == "SHARE_ERR_HTTP_STATUS"

    with pytest.raises(TypeError):
        opencode_share.sync(f"session/info/{SID}", object())


def test_not_initialised_and_bad_config():
    with pytest.raises(ShareError) as e:
        opencode_share.sync(f"session/info/{SID}", {})
    assert e.value.code == "SHARE_ERR_NOT_INITIALIZED"
    with pytest.raises(ShareError) as e:
        opencode_share.init({"no_such_key": 1})
    assert e.value.code == "SHARE_ERR_INVALID_ARGUMENT"
    assert "no_such_key" in str(e.value)
    with pytest.raises(ShareError) as e:
        opencode_share.shutdown(100)
    assert e.value.code == "SHARE_ERR_NOT_INITIALIZED"


def test_events_reach_the_handler_on_a_python_thread(library):
    got = []
    arrived = threading.Event()
    main = threading.get_ident()

    def handler(event):
        got.append((event, threading.get_ident()))
        if event["type"] == "synced":
            arrived.set()

    opencode_share.set_event_handler(handler)
    try:
        opencode_share.create(SID)
        opencode_share.sync(f"session/info/{SID}", {"title": "evented"})
        assert arrived.wait(10), f"no synced event; got {got}"
    finally:
        opencode_share.set_event_handler(None)
    synced = [e for e, _ in got if e["type"] == "synced"]
    assert synced == [{"type": "synced", "key": f"session/info/{SID}", "status": 200}]
    assert all(thread != main for _, thread in got)


def test_asyncio_create_flush_remove_do_not_block_the_loop(library):
    async def scenario():
        ticks = 0
        stop = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        shares = await asyncio.gather(opencode_share.create_async(SID), opencode_share.create_async(OTHER))
        opencode_share.sync(f"session/info/{SID}", {"title": "async"})
        await opencode_share.flush_async(5000)
        assert library.data(SID) == {f"session/info/{SID}": {"title": "async"}}
        await opencode_share.remove_async(SID, shares[0]["secret"])
        with pytest.raises(ShareError) as e:
            await opencode_share.remove_async(OTHER, "wrong-secret")
        stop.set()
        await task
        return shares, ticks, e.value

    shares, ticks, error = asyncio.run(scenario())
    assert shares[1]["secret"] == library.secret(OTHER)
    assert shares[0]["url"].endswith("/s/" + SID[-8:])
    assert library.data(SID) is None and library.data(OTHER) == {}
    assert error.code == "SHARE_ERR_HTTP_STATUS"
    assert ticks > 0, "the loop ran while the operations were under way"


def test_flush_async_times_out_while_the_service_is_down(service):
    opencode_share.init({"url": service.url, "retry_initial_ms": 50, "retry_max_ms": 50, "max_retries": 100})
    try:
        opencode_share.create(SID)
        service.down = True
        opencode_share.sync(f"session/info/{SID}", {"title": "never arrives"})

        async def scenario():
            with pytest.raises(ShareError) as e:
                await opencode_share.flush_async(300)
            return e.value

        started = time.monotonic()
        error = asyncio.run(scenario())
        assert error.code == "SHARE_ERR_TIMEOUT"
        assert time.monotonic() - started < 5
    finally:
        with pytest.raises(ShareError) as e:
            opencode_share.shutdown(200)
        assert e.value.code == "SHARE_ERR_TIMEOUT"
    assert opencode_share.stats()["dropped"] == 1

