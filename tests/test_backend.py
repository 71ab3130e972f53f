"""Both backends expose the same functions (fastnn._backend.FUNCTIONS)."""
import inspect

import pytest

from fastnn._backend import BACKENDS, FUNCTIONS, get_backend, get_default_backend, \
    set_default_backend


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_has_every_function(name):
    be = get_backend(name)
    missing = [f for f in FUNCTIONS if not callable(getattr(be, f, None))]
    assert missing == []
    assert be.NAME == name


def test_reference_signatures_match_the_bridge():
    c, ref = get_backend("c"), get_backend("numpy")
    for f in FUNCTIONS:
        try:
            sig_c = list(inspect.signature(getattr(c, f)).parameters)
        except (TypeError, ValueError):   # a builtin without a signature
            continue
        assert list(inspect.signature(getattr(ref, f)).parameters) == sig_c, f


def test_unknown_backend_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid backends: c, numpy"):
        get_backend("cuda")


def test_default_backend_switch():
    old = get_default_backend()
    try:
        set_default_backend("numpy")
        assert get_backend().NAME == "numpy"
    finally:
        set_default_backend(old)
    assert get_backend().NAME == old
