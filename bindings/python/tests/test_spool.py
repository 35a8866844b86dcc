"""The durable spool from Python: ``init(spool_dir=...)``; what a run left unsent is sent by the
next init on the folder; a folder others may read is refused with a clear message."""

import os

import pytest

import opencode_share
from opencode_share import ShareError

SID = "ses_python00000000000000000003"
KEY = f"session/part/{SID}/msg_1/prt_1"


def test_what_a_run_left_unsent_is_sent_by_the_next_init_on_the_spool(service, tmp_path):
    folder = tmp_path / "spool"
    opencode_share.init({"url": service.url, "retry_initial_ms": 2000, "retry_max_ms": 4000}, spool_dir=folder)
    try:
        opencode_share.create(SID)
        service.down = True  # 503 to everything: the contents stay pending
        for n in range(5):
            opencode_share.sync(KEY, {"n": n})
        assert opencode_share.stats()["spool"]["log_bytes"] > 0
    finally:
        with pytest.raises(ShareError) as e:
            opencode_share.shutdown(100)
    assert e.value.code == "SHARE_ERR_TIMEOUT"
    assert service.data(SID) == {}
    assert os.stat(folder).st_mode & 0o777 == 0o700
    service.down = False
    opencode_share.init({"url": service.url}, spool_dir=str(folder))
    try:
        assert opencode_share.stats()["spool"]["recovered_contents"] == 1
        opencode_share.flush(5000)
        assert service.data(SID) == {KEY: {"n": 4}}
    finally:
        opencode_share.shutdown(5000)


def test_a_spool_folder_others_may_read_is_refused(service, tmp_path):
    folder = tmp_path / "open"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    with pytest.raises(ShareError) as e:
        opencode_share.init(f'{{"url": "{service.url}"}}', spool_dir=folder)
    assert e.value.code == "SHARE_ERR_INVALID_ARGUMENT"
    assert "mode 755" in e.value.message and str(folder) in e.value.message


LEDGER_SID = "ses_python00000000000000000009"


def test_the_ledger_lists_a_forgotten_share_and_removes_it_without_its_secret(service, tmp_path):
    folder = tmp_path / "ledger"
    opencode_share.init({"url": service.url}, spool_dir=folder)
    try:
        secret = opencode_share.create(LEDGER_SID)["secret"]
        opencode_share.sync(f"session/info/{LEDGER_SID}", {"title": "ledger"})
        opencode_share.flush(5000)
    finally:
        opencode_share.shutdown(5000)
    # a new run that kept nothing of the last
    opencode_share.init({"url": service.url}, spool_dir=folder)
    try:
        [entry] = opencode_share.list_shares()
        assert entry["session"] == LEDGER_SID and entry["state"] == "shared"
        assert entry["created"] > 0 and secret not in repr(entry)
        opencode_share.remove_known(LEDGER_SID)
        assert service.data(LEDGER_SID) is None
        assert opencode_share.list_shares() == []
        with pytest.raises(ShareError) as e:
            opencode_share.remove_known(LEDGER_SID)
        assert e.value.code == "SHARE_ERR_INVALID_ARGUMENT"
        assert "ledger has no share" in e.value.message
    finally:
        opencode_share.shutdown(5000)
