import subprocess

import numpy as np
import pytest

from edge_app.errors import InputError
from model_tools import cfg, weights
from model_tools.weights import Header
from tests.conftest import TEST_CFGS


@pytest.fixture(scope="module")
def tiny():
    return cfg.load(TEST_CFGS["tiny-224x160"])


@pytest.mark.parametrize("header, size", [
    (Header(0, 2, 0, 32013312), 20),  # pjreddie
    (Header(0, 2, 5, 2 ** 40 + 7), 20),  # AlexeyAB, seen past 32 bits
    (Header(0, 1, 0, 123), 16),  # the old format darkflow assumed everywhere
    (Header(1000, 2, 0, 5), 16),  # darknet's major < 1000 guard
])
def test_header_forms_and_byte_identical_round_trip(tiny, header, size, tmp_path):
    original = weights.random(tiny, seed=4, header=header)
    path = tmp_path / "a.weights"
    path.write_bytes(original.to_bytes())
    loaded = weights.read(path, tiny)
    assert loaded.header == header and loaded.header.size == size
    weights.write(tmp_path / "b.weights", loaded)
    assert (tmp_path / "b.weights").read_bytes() == path.read_bytes()


def test_read_weights_keep_the_files_bytes_and_their_hash(tiny, tmp_path):
    # hashed once for the evaluation cache and the export metadata, written as-is into the bundle
    import hashlib

    path = tmp_path / "a.weights"
    path.write_bytes(weights.random(tiny, seed=5, header=Header(0, 2, 5, 64000)).to_bytes())
    loaded = weights.read(path, tiny)
    assert loaded.source == path.read_bytes() and loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert weights.with_fork(loaded, "pjreddie").sha256 == loaded.sha256  # the fork is read into, not written
    assert weights.random(tiny).sha256 is None and weights.partial(tiny, loaded, 2).sha256 is None


def test_arrays_are_cut_in_darknet_order(tiny, tmp_path):
    first = tiny.layers[0]
    n, c, k = first.filters, first.in_shape[0], first.size
    floats = np.arange(tiny.param_count, dtype="<f4")
    path = tmp_path / "seq.weights"
    path.write_bytes(Header(0, 2, 0, 0).to_bytes() + floats.tobytes())
    conv = weights.read(path, tiny).layers[0]
    assert conv.biases[0] == 0 and conv.scales[0] == n and conv.rolling_mean[0] == 2 * n
    assert conv.rolling_variance[0] == 3 * n and conv.weights.shape == (n, c, k, k)
    assert conv.weights[0, 0, 0, 0] == 4 * n and conv.weights[0, 1, 0, 0] == 4 * n + k * k


def write(path, data):
    path.write_bytes(data)
    return path


def test_truncated_file_says_expected_and_found(tiny, tmp_path):
    data = weights.random(tiny).to_bytes()
    path = write(tmp_path / "t.weights", data[:-10])
    with pytest.raises(InputError) as info:
        weights.read(path, tiny)
    assert f"needs {len(data)} bytes" in info.value.what
    assert f"has {len(data) - 10} bytes" in info.value.what and info.value.where == str(path)


def test_partial_file_is_recognised(tiny, tmp_path):
    full = weights.random(tiny)
    path = write(tmp_path / "p.weights", weights.partial(tiny, full, 7).to_bytes())
    with pytest.raises(InputError) as info:
        weights.read(path, tiny)
    assert "first 7 layers" in info.value.what


def test_weights_of_another_cfg(tmp_path):
    other = cfg.load(TEST_CFGS["yolov2-tiny-voc"])
    tiny = cfg.load(TEST_CFGS["tiny-224x160"])
    path = write(tmp_path / "o.weights", weights.random(tiny).to_bytes())
    with pytest.raises(InputError) as info:
        weights.read(path, other)
    assert "does not match the cfg" in info.value.what


def test_nan_weights_are_refused(tiny, tmp_path):
    w = weights.random(tiny)
    floats = w.floats.copy()
    floats[1234] = np.nan
    path = write(tmp_path / "n.weights", w.header.to_bytes() + floats.tobytes())
    with pytest.raises(InputError) as info:
        weights.read(path, tiny)
    assert "NaN" in info.value.what and "float 1234" in info.value.what


def test_too_short_for_a_header(tiny, tmp_path):
    with pytest.raises(InputError) as info:
        weights.read(write(tmp_path / "s.weights", b"\0" * 10), tiny)
    assert "too short" in info.value.what


@pytest.mark.darknet
@pytest.mark.parametrize("cfg_name, n", [("yolov2-tiny-voc", 13), ("tiny-224x160", 7),
                                         ("yolov2-voc", 23)])
def test_partial_is_byte_identical_to_darknet(cfg_name, n, darknet_bin, run_cli, tmp_path):
    net = cfg.load(TEST_CFGS[cfg_name])
    source = tmp_path / "trained.weights"
    # an AlexeyAB-stamped file that has seen images: both resets must happen
    source.write_bytes(weights.random(net, seed=2, header=Header(0, 2, 5, 987654321)).to_bytes())
    theirs, ours = tmp_path / "darknet.conv", tmp_path / "ours.conv"
    proc = subprocess.run([darknet_bin, "partial", str(TEST_CFGS[cfg_name]), str(source),
                           str(theirs), str(n)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    run_cli("model_tools", "partial", TEST_CFGS[cfg_name], source, ours, n, check=True)
    # the same layers as pjreddie's `darknet partial`; the header keeps the source's version stamp
    # (it names the fork, which picks the batch-norm epsilon at export) where pjreddie stamps its own
    assert ours.read_bytes()[20:] == theirs.read_bytes()[20:]
    assert weights.parse_header(theirs.read_bytes(), "x") == Header(0, 2, 0, 0)
    assert weights.parse_header(ours.read_bytes(), "x") == Header(0, 2, 5, 0)


def test_partial_keeps_the_source_fork_and_resets_seen(tiny):
    source = weights.random(tiny, header=weights.Header(0, 2, 5, 64000))  # as AlexeyAB stamps it
    cut = weights.partial(tiny, source, 7)
    assert (cut.header.major, cut.header.minor, cut.header.revision, cut.header.seen) == (0, 2, 5, 0)
    assert cut.header.fork == "alexeyab"
    assert weights.partial(tiny, weights.random(tiny), 7).header.fork == "pjreddie"


def test_the_fork_is_reported_with_its_evidence_and_can_be_given():
    """The fork decides the batch-norm epsilon and the default resize: a known stamp names it,
    an unknown one is reported as a guess, and --fork overrides either (recorded in the export)."""
    from model_tools.weights import Weights, with_fork

    known = Header(0, 2, 5, 0)
    assert known.stamp_is_known and known.fork == "alexeyab" and "from the version stamp 0.2.5" in known.fork_reason
    unknown = Header(0, 2, 7, 0)
    assert not unknown.stamp_is_known and "GUESSED" in unknown.fork_reason and "--fork" in unknown.fork_reason
    given = with_fork(Weights(unknown, np.zeros(0, "<f4"), ()), "pjreddie")
    assert given.header.fork == "pjreddie" and "as given with --fork" in given.header.fork_reason
    assert given.to_bytes() == unknown.to_bytes()  # the file itself is never rewritten
    with pytest.raises(InputError):
        with_fork(given, "hank")
