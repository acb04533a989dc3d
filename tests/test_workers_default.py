"""`workers: auto` counts the cores this process may use: the CPUs it may run on and, in a container, its CPU
quota (Docker `--cpus`, Kubernetes `limits.cpu`), which the kernel states in the cgroup files read here. A pod
limited to 2 CPUs on a 64-core node must not start 64 workers. The files are written as the kernel writes them,
under a temporary root instead of /sys/fs/cgroup."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lakegate.workers import default_workers

CORES = len(os.sched_getaffinity(0))


def _v2(root: Path, proc_cgroup: str, cpu_max: str | None) -> Path:
    group = root / "sys" / proc_cgroup.lstrip("/")
    group.mkdir(parents=True, exist_ok=True)
    if cpu_max is not None:
        (group / "cpu.max").write_text(cpu_max + "\n")
    (root / "self-cgroup").write_text(f"0::{proc_cgroup}\n")
    return root


def _workers(root: Path) -> int:
    return default_workers(cgroup_root=root / "sys", proc_cgroup=root / "self-cgroup")


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [
        ("100000 100000", 1),  # --cpus=1
        ("50000 100000", 1),  # half a core still serves with one worker
        ("150000 100000", min(2, CORES)),  # 1.5 cores: the second worker uses the half
        ("max 100000", CORES),  # no quota
        ("6400000 100000", CORES),  # a quota above the CPUs this process may run on
        ("garbage", CORES),
    ],
)
def test_a_cgroup_v2_cpu_quota_bounds_the_default_workers(
    tmp_path: Path, cpu_max: str, expected: int
) -> None:
    assert _workers(_v2(tmp_path, "/kubepods/pod1/c1", cpu_max)) == expected


def test_the_nearest_quota_up_the_cgroup_tree_counts(tmp_path: Path) -> None:
    _v2(tmp_path, "/kubepods/pod1", "100000 100000")  # the pod's limit
    assert _workers(_v2(tmp_path, "/kubepods/pod1/c1", None)) == 1


def test_cgroup_v1_cfs_quota_bounds_the_default_workers(tmp_path: Path) -> None:
    cpu = tmp_path / "sys" / "cpu,cpuacct" / "docker" / "abc"
    cpu.mkdir(parents=True)
    (cpu / "cpu.cfs_quota_us").write_text("100000\n")
    (cpu / "cpu.cfs_period_us").write_text("100000\n")
    (tmp_path / "self-cgroup").write_text(
        "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n1:name=systemd:/\n"
    )
    assert _workers(tmp_path) == 1
    (cpu / "cpu.cfs_quota_us").write_text("-1\n")  # no quota
    assert _workers(tmp_path) == CORES


def test_no_cgroup_files_means_the_cpus_this_process_may_run_on(tmp_path: Path) -> None:
    assert _workers(tmp_path) == CORES
    assert default_workers() >= 1  # this machine's own files, whatever they say
