"""Property-based tests (hypothesis) over the training-log parser, the one input the other fuzz
files leave out: real-format logs of every supported fork (tests/tools/log_formats.py), mutated
as damaged logs look (tests/fuzz.py), read whole (`parse-log`) and line by line (what `train`
does live). The property: rows or InputError, never another exception, never a hang; through
the CLI, exit 0 or exit 2 with a message and no CSV written."""
from __future__ import annotations

import math
import tempfile
from pathlib import Path

from hypothesis import given, strategies as st

from model_tools import darknet_log
from tests.fuzz import IN_PROCESS, SUBPROCESS, assert_cli_error_or_success, examples, mutated, \
    result_or_input_error
from tests.tools.log_formats import FORKS, write

SEEDS = [write(fork, iterations=4, subdivisions=2, map_every=2, seed=k)[0].encode()
         for k, fork in enumerate(FORKS)]


def check_rows(rows) -> None:
    """What a parsed log promises the CSV writer and the plots."""
    for row in rows:
        assert isinstance(row.iteration, int) and row.iteration >= 0, row
        assert isinstance(row.images, int) and isinstance(row.region_count, int), row
        for name in darknet_log.FIELDS:
            value = getattr(row, name)
            assert isinstance(value, (int, float)), (name, value)
            assert not (isinstance(value, float) and math.isinf(value) and name == "iteration"), row


@examples(IN_PROCESS)
@given(st.sampled_from(SEEDS).flatmap(mutated))
def test_log_file_property(data):
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "train.log"
        log.write_bytes(data)
        parsed, error = result_or_input_error(darknet_log.read_log, log)
        if parsed is not None:
            assert parsed.rows, "a log read without error has at least one iteration"
            check_rows(parsed.rows)


@examples(IN_PROCESS)
@given(st.sampled_from(SEEDS).flatmap(mutated))
def test_live_lines_property(data):
    rows, _ = result_or_input_error(lambda: list(darknet_log.parse_lines(data.splitlines(keepends=True))))
    if rows is not None:
        check_rows(rows)


@examples(SUBPROCESS)
@given(st.sampled_from(SEEDS).flatmap(mutated))
def test_parse_log_cli_property(run_cli, data):
    with tempfile.TemporaryDirectory() as tmp:
        log, out = Path(tmp) / "train.log", Path(tmp) / "metrics.csv"
        log.write_bytes(data)
        result = run_cli("model_tools", "parse-log", log, out)
        if assert_cli_error_or_success(result, "parse-log"):
            assert not out.exists(), "a failed parse-log must write no CSV"
        else:
            assert out.stat().st_size > 0
