"""The one log handler follows standard error as it is when a line is written."""
import io
import json
import sys

import pytest

from kontor.logging import configure_logging, get_logger

pytestmark = pytest.mark.unit


def test_lines_go_to_the_current_standard_error_even_after_the_one_at_configuration_was_closed(monkeypatch):
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    try:
        configure_logging("INFO", "json", service="orders")
        get_logger("t").info("one")
        first.close()  # as a test's capture is closed when the test ends
        monkeypatch.setattr(sys, "stderr", second)
        get_logger("t").info("two")
    finally:
        monkeypatch.setattr(sys, "stderr", sys.__stderr__)
        configure_logging("WARNING", "console")
    lines = second.getvalue().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["two"], lines
    assert "Logging error" not in second.getvalue()
