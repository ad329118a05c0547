"""Every shipped configuration runs end to end, on a tiny budget.

Each config keeps its own atlas, montage, orientation, dataset and training recipe (what makes
it that config: e.g. deepsif75's ``[dataset] snr_db``, which crashed the evaluation stage); only
the sizes are overridden: a few simulated regions, seconds of simulation, one variation per
region, a small network, one epoch, a handful of evaluation samples. fsaverage994 configs use
the shared DeepSIF anatomy folder and are skipped with a reason when it is absent.
"""

import json

import pytest

from lightbunny.pipeline import CONFIGS, load_config, run_pipeline

#: Sizes only: what makes each config itself is kept.
TINY = {
    "simulate": {"duration": 12.0, "batch_size": 16},
    "sources": {"n_iter_train": 1, "n_iter_val": 1, "n_iter_test": 1},
    "train": {"model_config": {"d_model": 16}, "epochs": 1, "batch_size": 16},
    "evaluate": {"snrs": [10], "n_samples": 4},
}
#: fsaverage994: simulate only the first regions (samples centred elsewhere are left out,
#: ``missing_clips="skip"``; the apply stage projects its own spikes, so it needs no clip).
FS_REGIONS = "0:8"


def tiny_config(name: str, data_dir=None) -> dict:
    """The shipped config ``name`` with sizes overridden by :data:`TINY`."""
    cfg = load_config(name)
    for section, values in TINY.items():
        cfg[section] = {**cfg[section], **values}
    cfg["pipeline"]["device"] = "cpu"
    if cfg["pipeline"]["atlas"] == "fsaverage994":
        cfg["pipeline"]["data_dir"] = str(data_dir)
        cfg["simulate"]["regions"] = FS_REGIONS
        # one source per sample: with two, almost no sample has both centres among the
        # simulated regions, and the training set would be empty
        cfg["sources"]["n_sources"] = 1
        cfg["evaluate"]["n_samples"] = 4
        # the sphere head: the fsaverage BEM (the default) costs minutes to solve in this
        # test's fresh cache and has its own tests (tests/test_headmodel.py)
        cfg["pipeline"]["head_model"] = "sphere"
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize("name", CONFIGS)
def test_shipped_config_runs_end_to_end(name, tmp_path, monkeypatch, request):
    cfg = load_config(name)
    data_dir = None
    if cfg["pipeline"]["atlas"] == "fsaverage994":
        data_dir = request.getfixturevalue("shared_anatomy")  # skips when absent
    monkeypatch.setenv("LIGHTBUNNY_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LIGHTBUNNY_DATA", raising=False)  # the config's data_dir must be used
    out = tmp_path / name
    res = run_pipeline(tiny_config(name, data_dir), out=out, progress=False)
    assert res["checkpoint"].is_file() and res["report"].is_file()
    methods = {r["method"] for r in res["summary"]}
    model = cfg["train"]["model"]
    assert any(m.startswith(f"{model}:") for m in methods), methods
    assert set(cfg["evaluate"]["methods"]) <= methods
    # the evaluation ran at the evaluation SNR, not at the config's training range
    assert {r["snr_db"] for r in res["summary"]} == {10.0}
    applied = json.loads((out / "apply" / "apply.json").read_text())
    assert set(applied) >= {"network", "sloreta"}
    # the network's outputs carry figures (the atlas was found through the config's data_dir)
    assert (out / "apply" / "network" / "power_map.png").is_file()
    assert (out / "apply" / "network" / "topomap.png").is_file()
