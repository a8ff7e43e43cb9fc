import random
import time

import numpy as np
import pytest
import torch

from condense.runtime import Meter, deterministic, flush_denormals, generator, resolve_device, seed_everything


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    for bad in ("gpu", "cuda:x", "tpu:0", ""):
        with pytest.raises(ValueError, match="device"):
            resolve_device(bad)
    with pytest.raises(TypeError):
        resolve_device(3)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_request_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="no CUDA device is available"):
        resolve_device("cuda:0")


def test_seed_everything_reproduces_all_generators():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    seed_everything(5)
    a = draw()
    seed_everything(5)
    assert draw() == a
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="seed"):
            seed_everything(bad)
    assert torch.equal(torch.rand(3, generator=generator(2)), torch.rand(3, generator=generator(2)))


def test_deterministic_mode_is_scoped():
    before = torch.are_deterministic_algorithms_enabled()
    with deterministic():
        assert torch.are_deterministic_algorithms_enabled()
    assert torch.are_deterministic_algorithms_enabled() == before


def test_flush_denormals_is_scoped_and_nests():
    if not torch.set_flush_denormal(False):  # returns whether this CPU supports the setting
        pytest.skip("this CPU cannot flush subnormals")
    tiny = torch.finfo(torch.float32).tiny  # smallest normal float32, 1.18e-38
    a = torch.tensor([tiny])

    def product() -> float:  # tiny / 4 is subnormal: kept as such by default, zero when flushed
        return float(a * 0.25)

    assert product() == pytest.approx(tiny / 4, rel=1e-6)
    with flush_denormals():
        assert product() == 0.0
        with flush_denormals():
            assert product() == 0.0
        assert product() == 0.0  # the inner block's exit leaves the outer one flushing
    assert product() == pytest.approx(tiny / 4, rel=1e-6)


def test_meter_records_wall_time_and_peak_memory():
    with Meter("cpu") as small:
        time.sleep(0.05)
    with Meter("cpu") as big:
        block = torch.ones(300 * 2**20 // 4)  # 300 MiB, touched
        del block
    assert small.result.wall_s >= 0.05
    assert big.result.peak_rss_mb > 0
    if not big.result.rss_is_process_peak:  # Linux: the peak is measured inside the block
        assert big.result.peak_rss_mb - small.result.peak_rss_mb > 250
    assert big.result.peak_cuda_mb is None
    assert set(big.result.as_dict()) == {"wall_s", "peak_rss_mb", "peak_cuda_mb", "rss_is_process_peak"}
