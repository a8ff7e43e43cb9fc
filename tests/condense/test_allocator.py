"""The CPU allocator tuning: freed large blocks are reused instead of being unmapped and faulted in again."""
import platform
import subprocess
import sys

import pytest

CHILD = """
import resource, sys
import numpy as np
from condense.allocator import retain_freed_memory
retained = retain_freed_memory() if sys.argv[1] == "1" else None
faults = []
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = np.ones(64 * 2**20 // 8)  # 64 MiB: above glibc's largest default mmap threshold (32 MiB)
    del a
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(retained, sum(faults[1:]))
"""


def _run(flag: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", CHILD, flag], capture_output=True, text=True, check=True).stdout
    retained, faults = out.split()
    return retained, int(faults)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_retained_memory_is_reused_without_page_faults():
    retained, faults_on = _run("1")
    _, faults_off = _run("0")
    assert retained == "True"
    # default glibc: every 64 MiB allocation is a fresh mapping whose pages fault in again (fewer faults than
    # 4 KiB pages where transparent huge pages are on, but hundreds per allocation either way)
    assert faults_off >= 5 * 100
    # retained: the heap keeps the freed block, so later allocations touch pages that are already mapped
    assert faults_on < faults_off / 10
