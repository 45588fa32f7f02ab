"""Fixtures of the ``fad_d2.space`` tests."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny convolutions run fastest on one thread (two OpenMP threads on a busy 2-core machine
    make a 7×7 conv hundreds of times slower)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
