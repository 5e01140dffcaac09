"""The path backend's write stream: what a commit publishes is exactly what was written."""

from __future__ import annotations

import os

from ansible.module_utils.simpledb.storage import PathStorage


def test_a_file_larger_than_the_writeback_step_commits_whole(tmp_path):
    storage = PathStorage(str(tmp_path))
    pieces = [os.urandom(3 * 1024 * 1024 + n) for n in range(12)]  # about 36 MiB, two writeback steps
    stream = storage.open_write("data.sql")
    for piece in pieces:
        assert stream.write(piece) == len(piece)
    assert not storage.exists("data.sql")  # nothing is published before the commit
    stream.commit()

    assert (tmp_path / "data.sql").read_bytes() == b"".join(pieces)
    assert os.listdir(tmp_path) == ["data.sql"]


def test_an_aborted_write_leaves_nothing(tmp_path):
    storage = PathStorage(str(tmp_path))
    stream = storage.open_write("data.sql")
    stream.write(os.urandom(20 * 1024 * 1024))
    stream.abort()

    assert os.listdir(tmp_path) == []
