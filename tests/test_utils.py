"""Shared helpers: atomic writes keep normal permissions and leave nothing behind on failure."""

import os

import pytest

from lightbunny.utils import atomic_path, check_option


def test_atomic_file_gets_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "x.txt") as tmp:
            tmp.write_text("a")
    finally:
        os.umask(old)
    assert (tmp_path / "x.txt").stat().st_mode & 0o777 == 0o644


def test_atomic_write_failure_leaves_no_file(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "x.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_check_option_lists_allowed_values():
    with pytest.raises(ValueError, match="Allowed: 'a', 'b'"):
        check_option("thing", "c", ("a", "b"))
