"""Issue 15 at the command line: each case ends in one clear message and an exit status, or in the
correct result; stale stages refuse or rebuild; flags mean one thing everywhere."""

import errno
import json
import logging
import os
import shutil

import h5py
import pytest

from lightbunny import cli
from lightbunny.cli import main

TINY_TOML = """
version = 1
[pipeline]
seed = 0
device = "cpu"
atlas = "tvb76"
montage = "{montage}"
[simulate]
duration = 6.0
batch_size = 38
[sources]
n_iter_train = 1
n_iter_val = 1
n_iter_test = 1
[dataset]
snr_db = [10, 20]
[train]
epochs = 1
batch_size = 16
model_config = {{ d_model = 32 }}
[evaluate]
methods = ["sloreta"]
snrs = [10]
n_samples = 6
[apply]
missing = "Cz"
"""
EIGHT = "Fp1,Fp2,Cz,Pz,Oz,O1,O2,T7"


def run_main(capsys, argv):
    """``main(argv)`` -> (exit status, stdout, stderr); never a traceback on stderr."""
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.out, out.err


def write_config(path, montage=EIGHT, **extra):
    text = TINY_TOML.format(montage=montage)
    path.write_text(text + "".join(f"{k}\n" for k in extra.values()))
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny pipeline run through the CLI (about 20 s): config and output folder."""
    root = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIGHTBUNNY_CACHE", str(root / "cache"))
        cfg = write_config(root / "tiny.toml")
        out = root / "out"
        assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 0
        yield cfg, out


# ----------------------------------------------------------------------- the pipeline run
@pytest.mark.slow
def test_run_records_real_out_seeds_and_stage_times(tiny_run, capsys):
    cfg, out = tiny_run
    recorded = json.loads((out / "config.json").read_text())
    assert recorded["pipeline"]["out"] == str(out)  # --out, not [pipeline] out
    assert recorded["seeds"] == {"simulate": 0, "sources": 0, "dataset": 0, "model": 0,
                                 "evaluate": 1, "apply_recording": 0}
    assert recorded["version"] == 1 and recorded["apply"]["missing"] == ["Cz"]
    assert str(out.resolve()) in (out / "report.html").read_text()
    first = json.loads((out / "timings.json").read_text())
    # a second run skips everything and keeps the times of the run that did the work
    code, stdout, _ = run_main(capsys, ["run", cfg, "--out", out, "--no-progress"])
    assert code == 0 and "none (all stages up to date)" in stdout
    again = json.loads((out / "timings.json").read_text())
    for stage in ("leadfield", "simulate", "sources", "train", "evaluate", "apply"):
        assert again[stage] == first[stage]
    assert first["train"] > 0.5
    stages = json.loads((out / "stages.json").read_text())["stages"]
    assert all(stages[s]["status"] == "done" for s in stages)


@pytest.mark.slow
def test_stale_stage_refuses_then_force_rebuilds(tiny_run, tmp_path, capsys):
    from lightbunny.leadfield import Leadfield

    _, src = tiny_run
    out = tmp_path / "out"
    shutil.copytree(src, out)
    (out / "stages.json").write_text((src / "stages.json").read_text())
    before = (out / "config.json").read_text()
    changed = write_config(tmp_path / "changed.toml", montage="standard_1020_64")
    code, _, err = run_main(capsys, ["run", changed, "--out", out, "--no-progress"])
    assert code == 1
    assert "leadfield: montage" in err and "standard_1020_64" in err and "--force" in err
    # nothing was rewritten: the old outputs and their provenance still agree
    assert (out / "config.json").read_text() == before
    assert Leadfield.load(out / "leadfield.h5").n_chans == 8
    # --force rebuilds the leadfield and every stage that depends on it
    code, stdout, _ = run_main(capsys, ["run", changed, "--out", out, "--no-progress", "--force"])
    assert code == 0
    assert "leadfield, simulate, train, evaluate, apply" in stdout  # sources do not depend on it
    assert Leadfield.load(out / "leadfield.h5").n_chans == 64
    config = json.loads((out / "config.json").read_text())
    assert config["pipeline"]["montage"] == "standard_1020_64"


@pytest.mark.slow
def test_modified_output_is_detected(tiny_run, tmp_path, capsys):
    _, src = tiny_run
    out = tmp_path / "out"
    shutil.copytree(src, out)
    (out / "sources_test.h5").write_bytes((out / "sources_val.h5").read_bytes())
    code, _, err = run_main(capsys, ["run", tiny_run[0], "--out", out, "--no-progress"])
    assert code == 1 and "sources_test.h5 changed since it was written" in err


def test_missing_data_dir_fails_fast_without_config(tmp_path, capsys):
    cfg = tmp_path / "fs.toml"
    cfg.write_text('[pipeline]\natlas = "fsaverage994"\n')
    out = tmp_path / "out"
    code, _, err = run_main(capsys, ["run", cfg, "--out", out, "--data-dir", tmp_path / "none"])
    assert code == 1 and "is not a folder" in err and str(tmp_path / "none") in err
    assert not (out / "config.json").exists() and not out.exists()


def test_run_accepts_data_dir(shared_anatomy, tmp_path, capsys):
    cfg = tmp_path / "fs.toml"
    cfg.write_text('[pipeline]\natlas = "fsaverage994"\nmontage = "deepsif75"\n')
    code, stdout, _ = run_main(capsys, ["run", cfg, "--check", "--data-dir", shared_anatomy,
                                        "--out", tmp_path / "o"])
    assert code == 0 and f'"data_dir": "{shared_anatomy}"' in stdout


# ----------------------------------------------------------------------- configs via the CLI
@pytest.mark.parametrize("lines, message", [
    ("[train]\nepochs = 1.9\n", "[train] epochs must be a whole number, got 1.9"),
    ('[evaluate]\nsnrs = "10"\n', "[evaluate] snrs must be a number or a list of numbers"),
    ("[dataset]\nsnr_dbb = 3\n", "Unknown option 'snr_dbb' in [dataset]. Did you mean 'snr_db'"),
    ("[train]\nmodel_config = {d_model = -4}\n", "d_model must be >= 1, got -4"),
    ("[train]\noptions = {lr = 0}\n", "[train] options lr must be > 0.0"),
    ('[evaluate]\ndataset = {recipe = "sed"}\n', "Did you mean 'seed'?"),
    ('[pipeline]\ndevice = "tpu9"\n', "Invalid device 'tpu9'"),
    ("[pipeline\n", "is not valid TOML"),
])
def test_bad_config_is_one_message(tmp_path, capsys, lines, message):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(lines)
    code, _, err = run_main(capsys, ["run", cfg, "--out", tmp_path / "out"])
    assert code == 1 and err.startswith("lightbunny run: error: ") and message in err
    assert not (tmp_path / "out").exists()


def test_single_missing_channel_is_one_channel(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[apply]\nmissing = "Cz"\n')
    code, stdout, _ = run_main(capsys, ["run", cfg, "--check", "--out", tmp_path / "o"])
    assert code == 0 and json.loads(stdout[:stdout.rindex("}") + 1])["apply"]["missing"] == ["Cz"]


# ----------------------------------------------------------------------- errors, not tracebacks
@pytest.mark.parametrize("err_no, text", [(errno.ENOSPC, "the disk is full"),
                                          (errno.EROFS, "read-only file system"),
                                          (errno.EACCES, "choose a folder you can write to")])
def test_os_errors_are_one_message(tmp_path, capsys, monkeypatch, err_no, text):
    import lightbunny.pipeline as pipeline

    def fail(path, obj):
        raise OSError(err_no, os.strerror(err_no), str(path))

    monkeypatch.setattr(pipeline, "write_json", fail)
    code, _, err = run_main(capsys, ["run", "quickstart", "--out", tmp_path / "o"])
    assert code == 1 and os.strerror(err_no) in err and text in err
    assert str(tmp_path / "o" / "config.json") in err


def test_out_that_is_a_file_is_one_message(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    code, _, err = run_main(capsys, ["run", "quickstart", "--out", tmp_path / "f"])
    assert code == 1 and "exists and is not a folder" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_is_one_message(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    code, _, err = run_main(capsys, ["sources", "--split", "test", "--n-iter", "1",
                                     "--out", ro / "s.h5"])
    assert code == 1 and "Permission denied" in err


def test_unexpected_error_is_one_message_and_debug_shows_traceback(capsys, monkeypatch):
    def boom(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setitem(cli.COMMANDS, "atlas", (*cli.COMMANDS["atlas"][:2], boom))
    code, _, err = run_main(capsys, ["atlas", "tvb76"])
    assert code == 1 and "ZeroDivisionError: division by zero" in err and "--debug" in err
    with pytest.raises(ZeroDivisionError):
        main(["atlas", "tvb76", "--debug"])


@pytest.mark.parametrize("command", [
    ["train", "--train-sources", "a", "--val-sources", "b", "--bank", "c", "--out", "d"],
    ["evaluate", "--sources", "a", "--bank", "b", "--out", "c"],
    ["simulate", "--out", "x.h5"],
    ["apply", "--method", "sloreta", "rec.edf", "--out", "o"],
    ["run", "quickstart"],
])
def test_bad_device_is_refused_everywhere(capsys, command):
    code, _, err = run_main(capsys, [*command, "--device", "tpu9"])
    assert code == 2 and "Invalid device 'tpu9'" in err and "'cuda:N'" in err


def test_negative_d_model_in_train_is_one_message(tmp_path, capsys):
    code, _, err = run_main(capsys, ["train", "--train-sources", tmp_path / "a.h5",
                                     "--val-sources", tmp_path / "b.h5", "--bank", tmp_path / "c",
                                     "--out", tmp_path / "d", "--model-config", '{"d_model": -1}'])
    assert code == 1 and "d_model must be >= 1, got -1" in err
    code, _, err = run_main(capsys, ["train", "--train-sources", "a", "--val-sources", "b",
                                     "--bank", "c", "--out", "d", "--model-config", "{d_model: 1"])
    assert code == 1 and "--model-config is not valid JSON" in err
    code, _, err = run_main(capsys, ["train", "--train-sources", "a", "--val-sources", "b",
                                     "--bank", "c", "--out", "d", "--randomise", "{noise: 1"])
    assert code == 1 and "--randomise is not valid JSON" in err
    code, _, err = run_main(capsys, ["train", "--train-sources", "a", "--val-sources", "b",
                                     "--bank", "c", "--out", "d", "--randomise", "often"])
    assert code == 1 and "randomise must be 'none', 'default'" in err


@pytest.mark.slow
def test_corrupt_and_truncated_inputs_are_one_message(tiny_run, tmp_path, capsys):
    _, out = tiny_run
    truncated = tmp_path / "sources_test.h5"
    data = (out / "sources_test.h5").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "bank.h5"
    garbage.write_bytes(b"not an hdf5 file" * 100)
    common = ["--leadfield", out / "leadfield.h5", "--methods", "sloreta", "--snr-db", "10",
              "--n-samples", "2", "--out", tmp_path / "ev"]
    code, _, err = run_main(capsys, ["evaluate", "--sources", truncated, "--bank", out / "bank.h5",
                                     *common])
    assert code == 1 and "sources_test.h5" in err
    code, _, err = run_main(capsys, ["evaluate", "--sources", out / "sources_test.h5",
                                     "--bank", garbage, *common])
    assert code == 1 and "bank.h5" in err


@pytest.mark.slow
def test_bank_without_its_folder_is_refused(tiny_run, tmp_path, capsys, monkeypatch):
    """The bank's region files are looked up next to it, never in the working directory."""
    _, out = tiny_run
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.copy(out / "bank.h5", moved / "bank.h5")  # without bank.h5.d/
    monkeypatch.chdir(out)  # the working directory holds another bank.h5.d/
    code, _, err = run_main(capsys, ["evaluate", "--sources", out / "sources_test.h5",
                                     "--bank", moved / "bank.h5", "--leadfield",
                                     out / "leadfield.h5", "--methods", "sloreta",
                                     "--out", tmp_path / "ev"])
    assert code == 1 and "is incomplete" in err and "bank.h5.d" in err


# ----------------------------------------------------------------------- one meaning per flag
def test_snr_and_recipe_have_one_meaning(capsys):
    base = ["evaluate", "--sources", "a", "--bank", "b", "--out", "c"]
    code, _, err = run_main(capsys, [*base, "--snr", "10"])
    assert code == 2 and "use --snr-db" in err and "amplitude ratio" in err
    code, _, err = run_main(capsys, [*base, "--recipe", "seed"])
    assert code == 2 and "use --data-recipe" in err and "training recipe" in err


@pytest.mark.slow
def test_evaluate_refuses_nan_snr_and_accepts_auto_device(tiny_run, tmp_path, capsys):
    _, out = tiny_run
    base = ["evaluate", "--sources", out / "sources_test.h5", "--bank", out / "bank.h5",
            "--leadfield", out / "leadfield.h5", "--checkpoint", out / "train" / "best.pt",
            "--methods", "none", "--n-samples", "2", "--out", tmp_path / "ev"]
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / "old.txt").write_text("an earlier evaluation")
    code, _, err = run_main(capsys, [*base, "--snr-db", "nan"])
    assert code == 1 and "snrs must be numbers in dB" in err
    # a failed evaluation leaves the earlier folder as it was, with nothing of its own
    assert [p.name for p in (tmp_path / "ev").iterdir()] == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ev"]
    code, _, _ = run_main(capsys, [*base, "--snr-db", "10", "--device", "auto"])
    assert code == 0
    # a finished one replaces the folder whole
    assert (tmp_path / "ev" / "summary.csv").is_file()
    assert not (tmp_path / "ev" / "old.txt").exists()
    import torch

    if torch.cuda.device_count() < 2:
        code, _, err = run_main(capsys, [*base, "--snr-db", "10", "--device", "cuda:1"])
        assert code == 1 and "'cuda:1' was requested but torch finds" in err


@pytest.mark.slow
def test_apply_accepts_auto_device(tiny_run, tmp_path, capsys):
    _, out = tiny_run
    code, _, _ = run_main(capsys, ["apply", "--checkpoint", out / "train" / "best.pt",
                                   out / "apply" / "recording.edf", "--out", tmp_path / "a",
                                   "--device", "auto", "--no-figures"])
    assert code == 0


def _spy_make_leadfield(monkeypatch):
    """Replace make_leadfield by a spy that records its data_dir and stops the command."""
    import lightbunny.leadfield

    seen = {}

    def spy(atlas, montage=None, **kw):
        seen.update(kw, montage=montage)
        raise ValueError("spy stop")

    monkeypatch.setattr(lightbunny.leadfield, "make_leadfield", spy)
    return seen


def test_data_dir_reaches_the_leadfield_in_leadfield_and_simulate(tmp_path, capsys, monkeypatch):
    for command in (["leadfield", "--montage", "deepsif75"],
                    ["simulate", "--montage", "deepsif75", "--out", tmp_path / "b.h5"]):
        seen = _spy_make_leadfield(monkeypatch)
        code, _, err = run_main(capsys, [*command, "--data-dir", tmp_path])
        assert code == 1 and "spy stop" in err
        assert seen["data_dir"] == str(tmp_path) and seen["montage"] == "deepsif75"


@pytest.mark.slow
def test_data_dir_reaches_the_leadfield_in_train_and_evaluate(tiny_run, tmp_path, capsys,
                                                               monkeypatch):
    _, out = tiny_run
    for command in (["train", "--train-sources", out / "sources_train.h5", "--val-sources",
                     out / "sources_val.h5", "--bank", out / "bank.h5", "--out", tmp_path / "t"],
                    ["evaluate", "--sources", out / "sources_test.h5", "--bank", out / "bank.h5",
                     "--out", tmp_path / "e"]):
        seen = _spy_make_leadfield(monkeypatch)
        code, _, err = run_main(capsys, [*command, "--montage", "deepsif75",
                                         "--data-dir", tmp_path])
        assert code == 1 and "spy stop" in err and seen["data_dir"] == str(tmp_path)


@pytest.mark.slow
def test_cli_train_calls_the_pipeline_stage(tiny_run, tmp_path, capsys, monkeypatch):
    import lightbunny.pipeline as pipeline

    _, out = tiny_run
    calls = []
    real = pipeline.train_stage

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "train_stage", spy)
    code, stdout, _ = run_main(capsys, [
        "train", "--train-sources", out / "sources_train.h5", "--val-sources",
        out / "sources_val.h5", "--bank", out / "bank.h5", "--leadfield", out / "leadfield.h5",
        "--out", tmp_path / "t", "--epochs", "1", "--batch-size", "16", "--model-config",
        '{"d_model": 32}', "--patience", "0", "--no-progress", "--threads", "1",
        "--randomise", '{"noise": {"white": 1}, "p_single": 1}'])
    assert code == 0 and "done: 1 epochs" in stdout
    (kw,) = calls
    assert kw["train"].model_config == {"d_model": 32} and kw["train"].options["patience"] == 0
    assert kw["dataset"]["missing_clips"] == "neighbour"  # the CLI default
    # the randomisation reaches the dataset and is recorded in the checkpoint, defaults filled in
    import torch

    ckpt = torch.load(tmp_path / "t" / "best.pt", map_location="cpu", weights_only=True)
    spec = ckpt["meta"]["dataset"]["randomise"]
    assert spec == kw["dataset"]["randomise"]
    assert spec["noise"] == {"white": 1.0} and spec["p_single"] == 1.0
    assert spec["n_active"] == [1, 3]


def test_main_adds_one_log_handler(capsys):
    pkg = logging.getLogger("lightbunny")
    for _ in range(3):
        main(["atlas", "tvb76", "--json"])
    assert sum(isinstance(h, cli._StderrHandler) for h in pkg.handlers) == 1
    capsys.readouterr()


# ----------------------------------------------------------------------- simulate: threads, lock
def test_simulate_honours_threads(tmp_path, capsys, monkeypatch):
    import torch

    import lightbunny.simulate.torch_backend as tb

    seen = []
    real = tb.simulate_torch

    def spy(*args, **kwargs):
        seen.append((kwargs.get("n_threads"), torch.get_num_threads()))
        return real(*args, **kwargs)

    monkeypatch.setattr(tb, "simulate_torch", spy)
    before = torch.get_num_threads()
    try:
        code, _, _ = run_main(capsys, ["simulate", "--regions", "0:1", "--duration", "0.2",
                                       "--no-scaling", "--threads", "2", "--out",
                                       tmp_path / "b.h5"])
    finally:
        torch.set_num_threads(before)
    assert code == 0 and seen == [(2, 2)]


def test_concurrent_pipeline_runs_are_refused(tmp_path, capsys):
    from lightbunny.utils import exclusive_lock

    out = tmp_path / "out"
    with exclusive_lock(out / ".run.lock"):
        code, _, err = run_main(capsys, ["run", "quickstart", "--out", out])
    assert code == 1 and f"another process is writing the pipeline output {out}" in err
    assert not (out / "config.json").exists()


def test_concurrent_bank_writers_are_refused(tmp_path, capsys):
    from lightbunny.utils import exclusive_lock

    bank = tmp_path / "b.h5"
    args = ["simulate", "--duration", "0.2", "--no-scaling", "--out", bank]
    with exclusive_lock(f"{bank}.lock"):  # another writer holds the bank
        code, _, err = run_main(capsys, [*args, "--regions", "0:2"])
    assert code == 1 and "another process is writing the spike bank" in err
    assert not bank.exists()
    # one after the other, the two region sets are merged into one index
    assert run_main(capsys, [*args, "--regions", "0:2"])[0] == 0
    assert run_main(capsys, [*args, "--regions", "2:4"])[0] == 0
    with h5py.File(bank) as f:
        assert sorted(int(k) for k in f["regions"]) == [0, 1, 2, 3]


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-3", "ten"])
def test_apply_refuses_a_non_finite_regularisation_snr(value, tmp_path, capsys):
    # --snr nan used to be taken as noise-free; it is now a usage error naming the value
    code = main(["apply", "--method", "sloreta", str(tmp_path / "x.edf"), "--out",
                 str(tmp_path / "o"), "--snr", value])
    err = capsys.readouterr().err
    assert code == 2 and "--snr" in err and value in err and "Traceback" not in err


def test_make_inverse_refuses_a_non_finite_snr():
    import numpy as np

    from lightbunny.inverse import make_inverse

    with pytest.raises(ValueError, match="positive, finite amplitude ratio"):
        make_inverse("sloreta", np.eye(4), snr=float("nan"))
