"""Jansen-Rit simulation: TVB parity, determinism, the resumable bank, Dask and the CLI."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from lightbunny.atlas import make_synthetic_atlas
from lightbunny.simulate import JansenRitConfig, simulate_bank, simulate_nodes, simulate_regions
from lightbunny.simulate.bank import parse_regions
from lightbunny.simulate.torch_backend import random_initial_history, stream_seed
from lightbunny.spikes import SpikeBank

ROOT = Path(__file__).resolve().parents[1]
FAST = JansenRitConfig(transient=20.0)  # tests keep the transient short: steps cost time
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")


@pytest.fixture(scope="module")
def atlas8():
    return make_synthetic_atlas(n_regions=8, n_vertices=300, seed=0)


@pytest.fixture(scope="module")
def tvb76():
    from lightbunny.atlas import load_atlas

    return load_atlas("tvb76")


def mild_history(n_hist, n_nodes, seed, stream):
    """TVB-style random history, with y1 and y5 shrunk so that exp() never overflows."""
    h = random_initial_history(n_hist, n_nodes, seed, stream)
    h[:, 1] *= 0.02
    h[:, 5] *= 0.02
    return h


# ----------------------------------------------------------------------------- config
def test_config_known_values():
    cfg = JansenRitConfig()
    assert cfg.nsig == pytest.approx((0.1 * 3.25 * 0.12 * 0.5) ** 2 / 2)
    assert cfg.sfreq == 500.0
    assert cfg.n_steps(20.0) == (1000 + 40000, 10000)
    assert cfg.n_steps(0.01) == (1000 + 20, 5)
    w = np.full((4, 4), 10.0)  # row sums 40
    assert cfg.coupling_strength(w) == pytest.approx(17.399292805 / 40)
    assert cfg.replace(reference_row_sum=None).coupling_strength(w) == 1.0
    np.testing.assert_array_equal(cfg.delays(np.array([[0.0, 3.7], [4.5, 300.0]])),
                                  [[0, 2], [3, 200]])  # rint(L / 3 / 0.5), half to even
    assert JansenRitConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="decimation"):
        JansenRitConfig(decimation=0)
    with pytest.raises(ValueError, match="unknown"):
        JansenRitConfig.from_dict({"A": 3.0, "bogus": 1})


def test_fsaverage994_row_sum_fix_is_identity(shared_anatomy):
    import io
    import zipfile

    with zipfile.ZipFile(shared_anatomy / "connectivity_998.zip") as z:
        w = np.loadtxt(io.BytesIO(z.read("weights.txt")))
    assert JansenRitConfig().coupling_strength(w) == pytest.approx(1.0, abs=1e-9)


def test_tvb76_row_sum_fix(tvb76):
    assert np.median(tvb76.weights.sum(1)) == pytest.approx(41.5, abs=0.1)
    assert JansenRitConfig().coupling_strength(tvb76.weights) == pytest.approx(17.3993 / 41.5,
                                                                               rel=1e-3)


def test_parse_regions():
    assert parse_regions("3:6", 10).tolist() == [3, 4, 5]
    assert parse_regions(None, 3).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="out of range"):
        parse_regions("5:12", 10)
    with pytest.raises(ValueError, match="no region"):
        parse_regions("4:4", 10)


# ----------------------------------------------------------------------------- torch backend
def test_output_shape_and_validation(atlas8):
    out = simulate_regions(atlas8, [1, 4], duration=0.02, seed=0, config=FAST)
    assert out.shape == (2, 10, 8) and out.dtype == np.float32
    with pytest.raises(ValueError, match="regions"):
        simulate_regions(atlas8, [8])
    with pytest.raises(ValueError, match="Invalid backend"):
        simulate_nodes(atlas8.weights, atlas8.tract_lengths, [0], backend="jax")
    with pytest.raises(ValueError, match="Invalid dtype"):
        simulate_nodes(atlas8.weights, atlas8.tract_lengths, [0], dtype="float16")
    if not __import__("torch").cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            simulate_regions(atlas8, [0], duration=0.01, device="cuda")
    with pytest.raises(ValueError, match="initial_history"):
        simulate_nodes(atlas8.weights, atlas8.tract_lengths, [0], duration=0.01,
                       initial_history=np.zeros((1, 6, 8)))


def test_seeded_and_batch_independent(atlas8):
    kw = dict(duration=0.1, config=FAST)
    a = simulate_regions(atlas8, [2, 5], seed=3, **kw)
    b = simulate_regions(atlas8, [2, 5], seed=3, **kw)
    c = simulate_regions(atlas8, [2, 5], seed=4, **kw)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1.0
    # a region's stream depends on (seed, region) only, not on its batch neighbours
    # (bitwise equality is not promised: vectorised kernels may round differently)
    alone = simulate_regions(atlas8, [5], seed=3, **kw)
    np.testing.assert_allclose(alone[0], a[1], atol=1e-3)


def test_source_region_spikes(atlas8):
    regions = [0, 3, 5, 6]
    out = simulate_regions(atlas8, regions, duration=2.0, seed=1,
                           config=JansenRitConfig(transient=200))
    src_max = [out[b][:, r].max() for b, r in enumerate(regions)]
    others = np.concatenate([np.delete(out[b], r, axis=1) for b, r in enumerate(regions)], 1)
    assert sum(m > 9.0 for m in src_max) >= 2  # A = 3.5 makes spikes above 8 mV (~1 per s)
    assert others.max() < 8.0                  # background nodes do not
    assert 0.5 < others.mean() < 3.0           # y1 - y2 of the resting JR column is ~1.4 mV


def test_float32_matches_float64(atlas8):
    cfg = JansenRitConfig(noise=False, transient=0, decimation=1)
    h = mild_history(100, 8, 0, 1)
    kw = dict(duration=0.1, config=cfg, initial_history=h)
    x64 = simulate_nodes(atlas8.weights, atlas8.tract_lengths, [1], dtype="float64", **kw)
    x32 = simulate_nodes(atlas8.weights, atlas8.tract_lengths, [1], dtype="float32", **kw)
    assert x64.dtype == np.float64
    np.testing.assert_allclose(x32, x64, atol=1e-3 * np.abs(x64).max())


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(atlas8):
    cfg = JansenRitConfig(noise=False, transient=0, decimation=1)
    h = mild_history(100, 8, 0, 1)
    kw = dict(duration=0.2, config=cfg, initial_history=h, dtype="float64")
    cpu = simulate_nodes(atlas8.weights, atlas8.tract_lengths, [1, 3], **kw)
    gpu = simulate_nodes(atlas8.weights, atlas8.tract_lengths, [1, 3], device="cuda", **kw)
    np.testing.assert_allclose(gpu, cpu, rtol=1e-9, atol=1e-9)


# ----------------------------------------------------------------------------- TVB parity
def test_tvb_parity_noise_off_tvb76(tvb76):
    """Noise off, same initial history: float64 torch reproduces TVB's y1 - y2 (500 steps)."""
    pytest.importorskip("tvb.simulator")
    from lightbunny.simulate.tvb_backend import tvb_horizon

    cfg = JansenRitConfig(noise=False, transient=0, decimation=1)
    h = mild_history(tvb_horizon(tvb76.tract_lengths, cfg), 76, 0, 5)
    kw = dict(duration=0.25, config=cfg, initial_history=h, dtype="float64")
    ref = simulate_nodes(tvb76.weights, tvb76.tract_lengths, [5], backend="tvb", **kw)
    out = simulate_nodes(tvb76.weights, tvb76.tract_lengths, [5], backend="torch", **kw)
    assert ref.shape == out.shape == (1, 500, 76)
    rel = np.abs(out - ref).max() / np.abs(ref).max()
    assert rel <= 1e-6, rel
    assert np.abs(ref).max() > 10  # a non-trivial trajectory


def test_tvb_parity_with_tvb_noise_stream(atlas8, monkeypatch):
    """Noise on: fed TVB's own random numbers, the torch step is TVB's step (2000 steps)."""
    pytest.importorskip("tvb.simulator")
    import torch

    from lightbunny.simulate.tvb_backend import tvb_horizon

    cfg = JansenRitConfig(transient=0, decimation=1)
    h = mild_history(tvb_horizon(atlas8.tract_lengths, cfg), 8, 0, 3)
    kw = dict(duration=1.0, config=cfg, initial_history=h, dtype="float64", seed=1,
              stream_ids=[3])
    ref = simulate_nodes(atlas8.weights, atlas8.tract_lengths, [3], backend="tvb", **kw)
    rs = np.random.RandomState(stream_seed(1, 3) % 2**32)  # TVB's Additive noise stream

    def tvb_randn(shape, generator=None, device=None, dtype=None):
        blk, n = shape  # TVB draws (6, n, 1) per step and keeps y4's row here
        return torch.as_tensor(np.stack([rs.normal(size=(6, n, 1))[4, :, 0] for _ in range(blk)]),
                               dtype=dtype)

    monkeypatch.setattr(torch, "randn", tvb_randn)
    out = simulate_nodes(atlas8.weights, atlas8.tract_lengths, [3], backend="torch", **kw)
    assert np.abs(out - ref).max() / np.abs(ref).max() < 1e-6


# ----------------------------------------------------------------------------- the bank
def bank_script(out, regions="0:6"):
    return textwrap.dedent(f"""
        import torch
        torch.set_num_threads(1)
        from lightbunny.atlas import make_synthetic_atlas
        from lightbunny.simulate import JansenRitConfig, simulate_bank
        atlas = make_synthetic_atlas(n_regions=8, n_vertices=300, seed=0)
        gain = __import__("numpy").random.default_rng(0).standard_normal((6, 8))
        simulate_bank(atlas, {str(out)!r}, regions={regions!r}, duration=3.0, batch_size=2,
                      seed=7, gain=gain, progress=False, config=JansenRitConfig(transient=50.0))
    """)


def run_bank(out, regions="0:6"):
    subprocess.run([sys.executable, "-c", bank_script(out, regions)], check=True, cwd=ROOT)


def assert_same_bank(p, q):
    a, b = SpikeBank.open(p), SpikeBank.open(q)
    assert a.complete_regions().tolist() == b.complete_regions().tolist()
    for r in a.complete_regions():
        np.testing.assert_array_equal(a.clips(r), b.clips(r))
        np.testing.assert_array_equal(a.spike_times(r), b.spike_times(r))


def test_bank_resume_after_kill(tmp_path):
    """kill -9 mid-run leaves a readable bank; re-running completes it identically."""
    full, killed = tmp_path / "full.h5", tmp_path / "killed.h5"
    run_bank(full)
    bank = SpikeBank.open(full)
    assert bank.complete_regions().tolist() == list(range(6))
    assert len(bank.regions_with_clips()) >= 3
    assert bank.attrs["seed"] == 7 and bank.attrs["config"]["A_source"] == 3.5
    assert bank.attrs["summary"]["n_regions_simulated"] == 6

    proc = subprocess.Popen([sys.executable, "-c", bank_script(killed)], cwd=ROOT)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait for the first chunk (2 regions) to land
        if killed.exists() and len(SpikeBank.open(killed).complete_regions()) >= 2:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = SpikeBank.open(killed)  # readable at once
    assert 2 <= len(partial.complete_regions()) < 6
    run_bank(killed)
    assert_same_bank(full, killed)


def test_bank_skips_complete_regions(tmp_path, atlas8):
    out = tmp_path / "b.h5"
    simulate_bank(atlas8, out, regions="0:2", duration=1.0, batch_size=2, progress=False,
                  config=FAST)
    mtime = (tmp_path / "b.h5.d" / "region_0000.h5").stat().st_mtime_ns
    bank = simulate_bank(atlas8, out, regions="0:2", duration=1.0, batch_size=2, progress=False,
                         config=FAST)
    assert (tmp_path / "b.h5.d" / "region_0000.h5").stat().st_mtime_ns == mtime
    assert bank.complete_regions().tolist() == [0, 1]
    with pytest.raises(ValueError, match="different settings"):
        simulate_bank(atlas8, out, regions="0:2", duration=2.0, progress=False, config=FAST)


def test_dask_local_cluster_writes_same_bank(tmp_path, atlas8):
    distributed = pytest.importorskip("dask.distributed")
    kw = dict(regions="0:4", duration=1.0, batch_size=2, seed=2, progress=False, config=FAST)
    a = simulate_bank(atlas8, tmp_path / "local.h5", **kw)
    # a cluster on this machine, reached through its scheduler address like a remote one
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        b = simulate_bank(atlas8, tmp_path / "dask.h5", scheduler=cluster.scheduler_address, **kw)
    assert b.complete_regions().tolist() == [0, 1, 2, 3]
    assert_same_bank(tmp_path / "local.h5", tmp_path / "dask.h5")
    assert a.attrs["backend"] == "torch"


def test_cli_simulate(tmp_path, capsys):
    from lightbunny.cli import main

    out = tmp_path / "cli.h5"
    rc = main(["simulate", "--atlas", "tvb76", "--regions", "3:5", "--duration", "1",
               "--batch-size", "2", "--out", str(out), "--threads", "1", "--consolidate"])
    assert rc == 0
    assert not (tmp_path / "cli.h5.d").exists()  # one self-contained file
    text = capsys.readouterr().out
    assert "regions without clips" in text and "clips per region" in text
    bank = SpikeBank.open(out)
    assert bank.atlas_name == "tvb76" and bank.n_regions == 76
    assert bank.complete_regions().tolist() == [3, 4]
    assert bank.attrs["gain_shape"] == [64, 76]
    assert bank.attrs["coupling_strength_used"] == pytest.approx(17.3993 / 41.5, rel=1e-3)
    # the same command again: nothing to do, the consolidated bank is kept
    assert main(["simulate", "--atlas", "tvb76", "--regions", "3:5", "--duration", "1",
                 "--batch-size", "2", "--out", str(out), "--no-scaling"]) == 1  # other settings
    assert main(["simulate", "--atlas", "tvb76", "--regions", "3:5", "--duration", "1",
                 "--batch-size", "2", "--out", str(out)]) == 0


def test_forward_simulate_sh(tmp_path):
    """The seed's `simulate.sh START END` usage, no prompt when not on a terminal."""
    out = tmp_path / "sh.h5"
    env = dict(os.environ, ATLAS="tvb76", OUT=str(out),
               LIGHTBUNNY=f"{sys.executable} -m lightbunny.cli")
    proc = subprocess.run(["bash", str(ROOT / "forward" / "simulate.sh"), "10", "12",
                           "--duration", "0.5", "--no-scaling", "--threads", "1"],
                          cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "regions without clips" in proc.stdout
    assert SpikeBank.open(out).complete_regions().tolist() == [10, 11]
    bad = subprocess.run(["bash", str(ROOT / "forward" / "simulate.sh"), "1"], cwd=ROOT,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_bank_with_tvb_backend(tmp_path, atlas8):
    pytest.importorskip("tvb.simulator")
    bank = simulate_bank(atlas8, tmp_path / "tvb.h5", regions=[2], duration=0.5, backend="tvb",
                         config=FAST, progress=True)
    assert bank.complete_regions().tolist() == [2] and bank.attrs["backend"] == "tvb"


@pytest.mark.slow
def test_tvb_parity_noise_statistics_tvb76(tvb76):
    """Noise on, independent streams, 2 sources x 10 s: background mean and std within 2%."""
    pytest.importorskip("tvb.simulator")
    stats = {}
    for backend, seed in (("tvb", 1), ("torch", 2)):
        out = simulate_regions(tvb76, [0, 40], backend=backend, duration=10.0, seed=seed)
        bg = np.concatenate([np.delete(out[0], 0, axis=1), np.delete(out[1], 40, axis=1)], axis=1)
        stats[backend] = bg.mean(), bg.std()
    for ref, val in zip(stats["tvb"], stats["torch"]):
        assert val == pytest.approx(ref, rel=0.02)
