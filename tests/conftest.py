import contextlib
import os
import sys
import tempfile

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/gradcheck.py and friends

# every test run compiles into its own cache folder unless one is given
os.environ.setdefault("GRAPHC_CACHE_DIR", os.path.join(tempfile.gettempdir(), "graphc-test-cache"))
# a kernel that fails to bind or compile is an error here, not a silent numpy fallback
os.environ.setdefault("GRAPHC_STRICT_KERNELS", "1")
# plans bind their compiled kernels at once (tests look at them); tests/test_tiered.py tiers
os.environ.setdefault("GRAPHC_TIERED", "0")


@pytest.fixture(autouse=True)
def fresh_default_graph():
    """Each test starts with an empty default graph."""
    import graphc as gc
    gc.reset_default_graph()
    yield
    gc.reset_default_graph()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def configure():
    """``configure(**changes)`` applies ``graphc.config.override(**changes)`` for the rest of the test."""
    import graphc as gc
    with contextlib.ExitStack() as stack:
        yield lambda **changes: stack.enter_context(gc.config.override(**changes))
