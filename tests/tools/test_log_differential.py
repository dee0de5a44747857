"""The log parser against a straightforward line-by-line reader (tests/tools/log_reference.py:
the hand-written regexes the parser had before its templates), on logs in every fork's format
as written, damaged and hostile: the same rows bit for bit, with the compiled scanner and with
its regex fallback, read whole from a file (in small blocks, so iterations straddle them) and
fed line by line. Also the two scanners' records against each other, and the grammar's check."""
from __future__ import annotations

import math
import os

import pytest
from hypothesis import given, strategies as st

from model_tools import darknet_log, log_grammar, native
from model_tools.log_grammar import Fields, Int, Lit, Num, Opt, Run, Template
from tests.fuzz import IN_PROCESS, examples, mutated
from tests.tools import log_formats, log_reference


@pytest.fixture(scope="module")
def compiled():
    if native.library() is None:
        if os.environ.get("MODEL_TOOLS_REQUIRE_NATIVE") == "1":
            pytest.fail(f"the compiled log scanner must be there: {native.status()}")
        pytest.skip(f"compiled log scanner not available: {native.status()}")
    return True


def keys(rows):
    """Each value as text that tells every float apart (NaN as one)."""
    def key(value):
        return "nan" if isinstance(value, float) and math.isnan(value) else (type(value).__name__, repr(value))
    return [[key(row[f] if isinstance(row, dict) else getattr(row, f)) for f in darknet_log.FIELDS] for row in rows]


def read(data: bytes, tmp_path, use_native: bool, block_bytes: int):
    log = tmp_path / "train.log"
    log.write_bytes(data)
    saved = darknet_log.BLOCK_BYTES
    darknet_log.BLOCK_BYTES = block_bytes
    try:
        return darknet_log.read_log(log, use_native=use_native).rows
    finally:
        darknet_log.BLOCK_BYTES = saved


def fed(data: bytes, use_native: bool):
    parser, rows = darknet_log.Parser(use_native), []
    for line in data.splitlines(keepends=True):
        rows += parser.feed_block(line)
    return rows


def assert_same_records(data: bytes) -> None:
    block = data.replace(b"\r", b"\n")
    a, b = darknet_log.scan(block, use_native=True), darknet_log.scan(block, use_native=False)
    assert a.pos.tolist() == b.pos.tolist() and a.tmpl.tolist() == b.tmpl.tolist()
    for name in ("slots", "sums", "carry"):
        assert keys_of(getattr(a, name)) == keys_of(getattr(b, name)), name


def keys_of(values):
    rows = values.reshape(len(values), -1).tolist() if values.size else []
    return [["nan" if math.isnan(v) else repr(v) for v in row] for row in rows]


def variants(text: str):
    data = text.encode()
    lines = data.split(b"\n")
    yield "as written", data
    yield "CRLF", data.replace(b"\n", b"\r\n")
    yield "CR", data.replace(b"\n", b"\r")
    yield "last line cut", data[:len(data) - len(lines[-2]) // 2 - 1]
    yield "invalid UTF-8", b"\n".join(line + b"\xff\xc3" if i % 7 == 0 else line for i, line in enumerate(lines))
    long = b"Avg (IOU: 0.5), count: 2, " * 3000
    yield "long lines", b"\n".join(line if i % 50 else line + b" " + long for i, line in enumerate(lines))
    yield "long CR lines", b"\n".join(line if i % 50 else line + b"\r" + long + b"\r" + long
                                      for i, line in enumerate(lines))
    yield "NaN loss", data.replace(b": 1", b": -nan", 5).replace(b"loss=\x1b[1;36m1", b"loss=\x1b[1;36m-nan", 5)


CASES = [(fork, name, data) for fork in log_formats.FORKS
         for name, data in variants(log_formats.write(fork, 40, subdivisions=3, map_every=7, seed=11)[0])]


@pytest.mark.parametrize("fork, variant, data", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
@pytest.mark.parametrize("use_native", [True, False], ids=["compiled", "regex"])
def test_rows_are_the_reference_rows(fork, variant, data, use_native, tmp_path, request):
    if use_native:
        request.getfixturevalue("compiled")
    want = keys(log_reference.rows(data))
    assert want, "the case holds iterations"
    assert keys(read(data, tmp_path, use_native, block_bytes=1000)) == want
    assert keys(read(data, tmp_path, use_native, block_bytes=4 << 20)) == want
    assert keys(fed(data, use_native)) == want


# lines that take the less common paths of the number conversion and the grammar
ODD_LINES = [
    b" 1: 1e5, 2.5E-3 avg, +3 rate, 1. seconds, 64 images",
    b" 2: 0.000000, -0.000000 avg, 00012.50 rate, 1e-400 seconds, -64 images, 1e999 hours left",
    b" 3: " + b"9" * 40 + b", 1." + b"3" * 40 + b" avg, 123456789012345678901 rate, 9007199254740993 seconds, 1 images",
    b" 4: 0.1e-30, 4.9e-324 avg, 1.7976931348623157e308 rate, 2.2250738585072011e-308 seconds, 1 images",
    b" 5: -nan(ind), nan avg, -inf rate, inf seconds, 999999999999999 images, 2.5 time left",
    b"Region Avg IOU: -nan(ind), Class: 1e2, Obj: 0.5, No Obj: 0.25, Avg Recall: 1.,  count: 123456789012345",
    b"Region Avg IOU: 0.5, Class: 0.5, Obj: 0.5, No Obj: 0.5, Avg Recall: 0.5,     count: 3",
    b"Region Avg IOU: 0.5, Class: 0.5, Obj: 0.5, No Obj: 0.5, Avg Recall: 0.5,      count: 3",
    b"Region 82 Avg IOU: 0.75, Class: 0.5, Obj: 0.5, No Obj: 0.5, .5R: 1.0, .75R: 0.5,  count: 4 trailing",
    b"x Avg (IOU: 0.5), count: 2 Avg (IOU: 0.25), count: 1, Avg (IOU: 0.125, GIOU: 0.1), Class: 0.2, Obj: 0.3, "
    b"No Obj: 0.4, .5R: 0.5, .75R: 0.6, count: 7",
    b"Avg (IOU: Avg (IOU: 0.5), count: 2",
    b"\x1b]2;7/9: loss=3 time=2\x07\x1b[1;37m7\x1b[0m: loss=\x1b[1;36m3.5\x1b[0m, avg loss=\x1b[1;36m3.25\x1b[0m, "
    b"rate=abc, rate=0.5, load 64=7.0 milliseconds, 12, 64 images, 448 images",
    b"8: loss=1, avg loss=2" + b", x=1" * 9 + b", rate=0.1, 64 images",
    b"9: loss=1, avg loss=2" + b", x=1" * 8 + b", rate=0.1, 64 images",
    b"10: loss=1, avg loss=2, " + b"y" * 101 + b", rate=0.1, 64 images",
    b"-> mean average precision (mAP@0.5)=\x1b[1;34m51.20 %\x1b[0m",
    b"mean_average_precision (mAP@0.50) = 0.75(ind)",
    b" mean average precision (mAP@1.2.3.4.5) =0.5",
    b"11: 1.0, 2.0 avg, 0.1 rate, 1.0 seconds, 64 images, 1.5 hours lef",
    b"12 : 1.0, 2.0 avg, 0.1 rate, 1.0 seconds, 64 images",
    b"         13: 1.0, 2.0 avg, 0.1 rate, 1.0 seconds, 64 images",
    b"14: 1.0e, 2.0 avg, 0.1 rate, 1.0 seconds, 64 images",
    b"15: 1.0(ind), 2.0(abcdefghi) avg, 0.1 rate, 1.0 seconds, 64 images",
    b"16: " + b"1" * 41 + b", 2.0 avg, 0.1 rate, 1.0 seconds, 64 images",
    b"17: 1.0, 2.0 avg loss, 0.1 rate, 1.0 seconds, 64 images",
    b"Can't open label file. (This can be normal only if you use MSCOCO): a.txt Can't open label file",
    b"",
]


@pytest.mark.parametrize("use_native", [True, False], ids=["compiled", "regex"])
def test_odd_numbers_and_lines_give_the_reference_rows(use_native, tmp_path, request):
    if use_native:
        request.getfixturevalue("compiled")
    data = b"\n".join(ODD_LINES * 2)
    want = keys(log_reference.rows(data))
    assert len(want) >= 16
    assert keys(read(data, tmp_path, use_native, block_bytes=300)) == want
    assert keys(fed(data, use_native)) == want
    parser = darknet_log.Parser(use_native)
    parser.feed_block(data)
    assert parser.missing_labels == data.count(b"Can't open label file") == 4


def test_the_two_scanners_find_the_same_records(compiled):
    for data in [b"\n".join(ODD_LINES)] + [d for _, _, d in CASES]:
        assert_same_records(data)


def test_more_records_than_the_first_buffer_holds(compiled):
    region = b"Avg (IOU: 0.5), count: 2 " * 10 + b"\n"
    maps = b"mean average precision (mAP@0.5)=1 %\n" * 10
    data = b" 1: 1.0, 2.0 avg, 0.1 rate, 1.0 seconds, 64 images\n" + (region + maps) * 300 + \
        b" 2: 1.0, 2.0 avg, 0.1 rate, 1.0 seconds, 64 images\n" + region
    found = darknet_log.scan(data, use_native=True)
    assert len(found.pos) == 2 + 3000 > len(data) // 256 + 64  # more than one call of the scanner
    assert found.sums[-1, -1] == 300 * 10 * 2 and found.carry[-1] == 20
    assert_same_records(data)
    assert keys(fed(data, True)) == keys(log_reference.rows(data))
    assert darknet_log.parse_lines([data]).__next__().iteration == 1


def test_the_fallback_runs_when_the_library_is_off(monkeypatch, tmp_path):
    text, _ = log_formats.write("alexeyab-v3", 5, subdivisions=2, map_every=2)
    monkeypatch.setenv("MODEL_TOOLS_NATIVE", "0")
    native.reset()
    try:
        assert native.library() is None and "MODEL_TOOLS_NATIVE=0" in native.status()
        assert keys(read(text.encode(), tmp_path, None, 1 << 20)) == keys(log_reference.rows(text.encode()))
    finally:
        monkeypatch.delenv("MODEL_TOOLS_NATIVE")
        native.reset()


@examples(IN_PROCESS)
@given(st.sampled_from([log_formats.write(fork, 4, subdivisions=2, map_every=2, seed=k)[0].encode()
                        for k, fork in enumerate(log_formats.FORKS)]).flatmap(mutated))
def test_damaged_logs_give_the_reference_rows(data):
    want = keys(log_reference.rows(data))
    for use_native in ([True, False] if native.library() is not None else [False]):
        assert keys(fed(data, use_native)) == want
        parser = darknet_log.Parser(use_native)
        assert keys(parser.feed_block(data)) == want
    if native.library() is not None:
        assert_same_records(data)


# --- the grammar's own guarantees ------------------------------------------------------------

@pytest.mark.parametrize("parts, complaint", [
    ([Lit(b"a"), Run.of(b" ", 0, 4), Lit(b" b")], "followed by one of its own bytes"),
    ([Lit(b"a"), Num(0), Lit(b".")], "continues a number"),
    ([Lit(b"a"), Num(0), Opt(Lit(b"(x)"))], "continues a number"),
    ([Lit(b"a"), Int(0, 3), Run.of(b"0123456789", 0, 2)], "followed by a digit"),
    ([Lit(b"a"), Fields(2, 10), Lit(b" rate")], "begins with ','"),
])
def test_the_grammar_refuses_a_template_the_scanner_would_read_otherwise_than_the_regex(parts, complaint):
    with pytest.raises(ValueError, match=complaint):
        Template("t", parts)


def test_a_template_searched_anywhere_begins_with_a_literal():
    with pytest.raises(ValueError, match="begins with a literal"):
        Template("t", [Num(0), Lit(b" x")], anywhere=True)


def test_regex_and_program_come_from_the_same_templates():
    assert [t.regex for t in darknet_log.TEMPLATES] == darknet_log.PATTERNS
    assert darknet_log.PROGRAM == log_grammar.program(darknet_log.TEMPLATES, darknet_log._GROUPS,
                                                      darknet_log._KINDS)


def test_parse_log_writes_the_same_csv_with_either_scanner(compiled, tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    text, _ = log_formats.write("hank-ai-v3", 30, subdivisions=2, map_every=10, seed=5)
    (tmp_path / "train.log").write_text(text)
    out = {}
    for setting in ("1", "0"):
        done = subprocess.run([sys.executable, "-m", "model_tools", "parse-log", tmp_path / "train.log",
                               tmp_path / f"m{setting}.csv"], capture_output=True, text=True,
                              env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "MODEL_TOOLS_NATIVE": setting})
        assert done.returncode == 0, done.stderr
        assert ("read with regexes" in done.stdout) == (setting == "0"), done.stdout
        out[setting] = (tmp_path / f"m{setting}.csv").read_bytes()
    assert out["1"] == out["0"] and out["1"].count(b"\r\n") == 31


def test_the_scanner_reads_no_byte_outside_its_buffer(tmp_path):
    """logscan.c built with AddressSanitizer and UBSan, run over damaged logs of every format (each
    in a heap block of exactly its size): any read past a line's buffer, or undefined behaviour,
    stops the run. (A literal searched for near the end of a block was once compared past it.)"""
    import random
    import shutil
    import subprocess

    from tests.conftest import REPO
    from tests.fuzz import TOKENS

    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc")
    driver = tmp_path / "driver"
    build = subprocess.run([gcc, "-O1", "-g", "-std=c99", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                            "-o", driver, REPO / "tests/tools/native/logscan_driver.c",
                            REPO / "model_tools/native/logscan.c"], capture_output=True, text=True)
    if build.returncode != 0:
        pytest.skip(f"gcc cannot build with the sanitizers here: {build.stderr[-300:]}")
    (tmp_path / "program").write_bytes(darknet_log.PROGRAM)
    rnd = random.Random(7)
    seeds = [log_formats.write(fork, 4, subdivisions=2, map_every=2, seed=k)[0].encode()
             for k, fork in enumerate(log_formats.FORKS)] + [b"\n".join(ODD_LINES)]
    files = []
    for i in range(400):
        data = bytearray(rnd.choice(seeds))
        for _ in range(rnd.randint(1, 6)):
            at = rnd.randrange(len(data) + 1)
            op = rnd.randrange(4)
            if op == 0:
                data[at:at] = rnd.choice(TOKENS)
            elif op == 1:
                del data[at:]  # ends anywhere, in the middle of a literal too
            elif op == 2:
                data[at:at] = bytes(data[at:at + rnd.randint(1, 200)]) * rnd.randint(1, 40)
            else:
                data[at:at] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 20)))
        files.append(tmp_path / f"{i}.log")
        files[-1].write_bytes(bytes(data))
    for lit in (b"Avg (IOU: ", b"Can't open label file"):  # blocks that end inside a searched literal
        for k in range(1, len(lit)):
            files.append(tmp_path / f"cut{len(files)}.log")
            files[-1].write_bytes(b"x " + lit[:k])
    done = subprocess.run([driver, tmp_path / "program", *files], capture_output=True, text=True,
                          env={"ASAN_OPTIONS": "detect_leaks=0", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
