"""Fixtures of the benchmark smoke tests."""
import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Benchmarks run on one thread (``run_all`` sets it); two OpenMP threads on a busy 2-core
    machine make tiny convolutions hundreds of times slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
