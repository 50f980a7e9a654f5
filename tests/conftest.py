"""Shared test set-up: deterministic torch, one intra-op thread, and OpenSTL detection."""
import pytest
import torch

from openstl_hrvq import openstl_bridge

# One thread: on a 2-core machine that runs anything else, OpenMP's spinning threads make 2 threads up to
# 7x slower than 1 (measured here); alone, 1 thread costs little on these small test models.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def openstl():
    """OpenSTL's packages; the test is skipped cleanly when OpenSTL is not importable."""
    if not openstl_bridge.openstl_available():
        pytest.skip('OpenSTL is not importable (install it from its git repository to run this test)')
    import openstl
    return openstl
