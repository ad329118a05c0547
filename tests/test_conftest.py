"""The test suite finds a user's own fsaverage994 files through LIGHTBUNNY_DATA."""


def test_shared_anatomy_follows_lightbunny_data(request, monkeypatch, tmp_path):
    (tmp_path / "fs_cortex_20k_region_mapping.mat").write_bytes(b"")  # the file it looks for
    monkeypatch.setenv("LIGHTBUNNY_DATA", str(tmp_path))
    assert request.getfixturevalue("shared_anatomy") == tmp_path


def test_lightbunny_data_comes_before_the_shared_checkout(monkeypatch, tmp_path):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("_conftest", Path(__file__).with_name("conftest.py"))
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    monkeypatch.setenv("LIGHTBUNNY_DATA", str(tmp_path))
    assert conftest.anatomy_candidates() == [tmp_path, conftest.SHARED_ANATOMY]
    monkeypatch.delenv("LIGHTBUNNY_DATA")
    assert conftest.anatomy_candidates() == [conftest.SHARED_ANATOMY]
