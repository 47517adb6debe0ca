"""Settings every test shares."""

from __future__ import annotations

import signal
import threading

import pytest


@pytest.fixture(autouse=True)
def python_handles_ctrl_c():
    """Ctrl-C raises KeyboardInterrupt, as in a shell a user types into. A
    test run started in the background of a non-interactive shell inherits
    SIGINT ignored, and Python then keeps it ignored: the tests of what
    Ctrl-C does would not see it."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def pytest_collection_modifyitems(config, items):
    """Ray tests start a Ray cluster (minutes on a small machine): they run
    when selected with `-m ray` (.ci/run does, after the main run)."""
    if "ray" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="a Ray test: run it with python -m pytest -m ray")
    for item in items:
        if item.get_closest_marker("ray"):
            item.add_marker(skip)
