"""The command line: listed subcommands, summaries, clear errors."""

import json

import pytest

from lightbunny.cli import COMMANDS, build_parser, main


def test_help_lists_registered_commands(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    for name in ("atlas", "leadfield", "fetch"):
        assert name in out
    assert set(COMMANDS) >= {"atlas", "leadfield", "fetch"}


def test_atlas_summary_json(capsys):
    assert main(["atlas", "tvb76", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_regions"] == 76 and summary["n_vertices"] == 16384
    assert summary["channels"]["default_n_chans"] == 64


def test_atlas_fsaverage994(shared_anatomy, capsys):
    assert main(["atlas", "fsaverage994", "--data-dir", str(shared_anatomy)]) == 0
    assert "994 regions" in capsys.readouterr().out


def test_missing_data_dir_is_a_clean_error(tmp_path, capsys):
    # the atlas itself runs on vendored files; DeepSIF's cap needs the data folder
    assert main(["leadfield", "--atlas", "fsaverage994", "--montage", "deepsif75",
                 "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "lacks electrode_75.mat" in err and "Traceback" not in err


def test_leadfield_command_writes_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LIGHTBUNNY_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "lf.h5"
    assert main(["leadfield", "--atlas", "tvb76", "--montage", "Cz,Pz,Oz", "--out", str(out)]) == 0
    from lightbunny.leadfield import Leadfield

    lf = Leadfield.load(out)
    assert lf.gain.shape == (3, 76) and lf.ch_names == ("Cz", "Pz", "Oz")
    assert "3 channels x 76 regions" in capsys.readouterr().out


def test_bad_channel_is_a_clean_error(capsys):
    assert main(["leadfield", "--montage", "Cz,Cq"]) == 1
    assert "'Cq' (close: Cz" in capsys.readouterr().err


def test_fetch_from_local_mirror(shared_anatomy, tmp_path, capsys):
    # fetch all files from a file:// mirror of the shared copy
    url = shared_anatomy.as_uri() + "/{path}"
    assert main(["fetch", "--data-dir", str(tmp_path), "--url", url]) == 0
    assert (tmp_path / "connectivity_998.zip").is_file()
    assert main(["atlas", "fsaverage994", "--data-dir", str(tmp_path)]) == 0
