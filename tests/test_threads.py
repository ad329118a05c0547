"""CPU thread policy: usable cores from affinity and cgroup quota, one thread per job when
several LightBunny jobs share the machine, --threads honoured."""

import os
import subprocess
import sys

import pytest
import torch

from lightbunny import utils


@pytest.fixture
def keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture
def jobs_dir(tmp_path, monkeypatch):
    d = tmp_path / "jobs"
    monkeypatch.setattr(utils, "_jobs_dir", lambda: d)
    return d


def test_cgroup_quota(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert utils._cgroup_cpu_limit(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert utils._cgroup_cpu_limit(tmp_path) is None
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("300000")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert utils._cgroup_cpu_limit(tmp_path) == 3.0


def test_usable_cores_respect_affinity_and_quota(monkeypatch):
    assert 1 <= utils.usable_cores() <= len(os.sched_getaffinity(0))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(utils, "_cgroup_cpu_limit", lambda: 2.5)
    assert utils.usable_cores() == 2
    monkeypatch.setattr(utils, "_cgroup_cpu_limit", lambda: 0.5)
    assert utils.usable_cores() == 1
    monkeypatch.setattr(utils, "_cgroup_cpu_limit", lambda: None)
    assert utils.usable_cores() == 4


def test_running_jobs_counts_live_jobs_only(jobs_dir):
    assert utils.running_jobs() == 1  # this one
    jobs_dir.mkdir()
    (jobs_dir / str(os.getppid())).touch()  # a live process
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (jobs_dir / dead).touch()
    assert utils.running_jobs() == 2
    assert not (jobs_dir / dead).exists()  # the dead job's mark is cleaned up


def test_policy_one_thread_per_job_when_shared(jobs_dir, monkeypatch, keep_threads):
    monkeypatch.setattr(utils, "usable_cores", lambda: 2)
    monkeypatch.setattr(utils, "machine_load", lambda: 0.1)  # a quiet machine
    assert utils.set_threads() == 2 and torch.get_num_threads() == 2
    jobs_dir.mkdir()
    (jobs_dir / str(os.getppid())).touch()  # a second job starts
    assert utils.set_threads() == 1 and torch.get_num_threads() == 1
    # a running job's policy follows: 1 thread now, back to 2 when the other job has ended
    policy = utils.ThreadPolicy(interval=0.0)
    assert policy.update() == 1
    (jobs_dir / str(os.getppid())).unlink()
    assert policy.update() == 2 and torch.get_num_threads() == 2


def test_threads_flag_is_honoured(jobs_dir, keep_threads, caplog):
    jobs_dir.mkdir()
    (jobs_dir / str(os.getppid())).touch()  # even with another job running
    assert utils.set_threads(3) == 3 and torch.get_num_threads() == 3
    assert utils.ThreadPolicy(2).update() == 2 and torch.get_num_threads() == 2
    with pytest.raises(ValueError, match="threads must be >= 1"):
        utils.set_threads(0)


def test_a_reused_process_id_is_not_a_job(jobs_dir):
    jobs_dir.mkdir()
    (jobs_dir / str(os.getppid())).write_text("1")  # started at tick 1: not our parent
    assert utils.running_jobs() == 1
    utils.register_job()
    assert (jobs_dir / str(os.getpid())).read_text() == utils._start_time(os.getpid()) != ""


def test_policy_leaves_cores_busy_elsewhere(jobs_dir, monkeypatch, keep_threads):
    monkeypatch.setattr(utils, "usable_cores", lambda: 8)
    monkeypatch.setattr(utils, "machine_load", lambda: 3.2)  # other processes use ~3 cores
    assert utils.set_threads() == 5
    monkeypatch.setattr(utils, "machine_load", lambda: 11.0)  # an overloaded machine
    assert utils.set_threads() == 1
    assert utils.set_threads(4) == 4  # --threads wins
