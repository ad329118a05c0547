"""Data-parallel training: 2 CPU processes (gloo) launched by torchrun."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("ddp_worker.py")


def _run(args, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(WORKER.parents[1])}
    proc = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
def test_two_process_ddp_ranks_end_identical_and_match_one_process(tmp_path):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    _run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER),
          str(ddp)], tmp_path)
    _run([str(WORKER), str(single)], tmp_path)
    w0 = torch.load(ddp / "rank0_of2.pt", weights_only=True)
    w1 = torch.load(ddp / "rank1_of2.pt", weights_only=True)
    ws = torch.load(single / "rank0_of1.pt", weights_only=True)
    from lightbunny.models import build_model

    init = build_model("lightbunny", random_state=0, n_chans=6, n_times=50, n_sources=8,
                       d_model=16, chunk_size=10).state_dict()
    assert w0.keys() == w1.keys() == ws.keys() == init.keys()
    assert any(not torch.equal(w0[k], init[k]) for k in w0)  # training moved the weights
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k  # both ranks end with identical weights
        # each rank computed half of every global batch; averaged gradients = the full batch's
        torch.testing.assert_close(w0[k], ws[k], rtol=1e-4, atol=1e-5)
    ckpt = torch.load(ddp / "last.pt", weights_only=True)  # written by rank 0 only
    assert ckpt["epoch"] == 2
    for k in w0:
        assert torch.equal(ckpt["model_state"][k], w0[k])
    assert not (ddp / "rank0_of1.pt").exists()
