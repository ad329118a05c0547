"""The test suite finds a user's own fsaverage994 files through LIGHTBUNNY_DATA."""

import importlib.util
from pathlib import Path

import pytest


@pytest.fixture
def conftest():
    path = Path(__file__).with_name("conftest.py")
    spec = importlib.util.spec_from_file_location("_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lightbunny_data_is_searched_first(conftest, monkeypatch, tmp_path):
    monkeypatch.setenv("LIGHTBUNNY_DATA", str(tmp_path))
    assert conftest.anatomy_candidates() == [tmp_path, conftest.SHARED_ANATOMY]
    (tmp_path / "fs_cortex_20k_region_mapping.mat").write_bytes(b"")  # the file it looks for
    assert conftest.find_anatomy() == tmp_path


def test_without_lightbunny_data_the_shared_checkout_is_used(conftest, monkeypatch, tmp_path):
    monkeypatch.delenv("LIGHTBUNNY_DATA", raising=False)
    assert conftest.anatomy_candidates() == [conftest.SHARED_ANATOMY]
    monkeypatch.setenv("LIGHTBUNNY_DATA", str(tmp_path))  # set, but without the files
    shared_ok = (conftest.SHARED_ANATOMY / "fs_cortex_20k_region_mapping.mat").exists()
    expected = conftest.SHARED_ANATOMY if shared_ok else None
    assert conftest.find_anatomy() == expected
