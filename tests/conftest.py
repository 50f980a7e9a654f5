"""Shared test set-up: deterministic torch, few threads (CI has 2 cores), and OpenSTL detection."""
import pytest
import torch

from openstl_hrvq import openstl_bridge

torch.set_num_threads(2)


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
