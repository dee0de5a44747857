"""`model-tools train` around the real (Debian, pjreddie) darknet: the binary and fork named, fork-only
flags refused, one training per backup folder, darknet stopped with the driver, .data paths read
from darknet's working folder, labels checked before darknet starts."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from model_tools import cfggen, dataset, synth, train
from tests.conftest import REPO


@pytest.fixture(scope="module")
def seed_style(tmp_path_factory):
    """A seed-style project: relative paths in the .data and in the lists, read from its folder."""
    root = tmp_path_factory.mktemp("project")
    annotations = synth.generate(root / "synth", 40, seed=2, progress=False)
    dataset.build(dataset.import_flickr27(annotations), root / "ds", ratios=(0.8, 0.2, 0.0), name="p",
                  progress=False)
    for split in ("train", "valid"):
        lines = (root / "ds" / f"{split}.txt").read_text().split()
        (root / "ds" / f"{split}.txt").write_text("".join(os.path.relpath(l, root) + "\n" for l in lines))
    (root / "p.data").write_text("classes=6\ntrain=ds/train.txt\nvalid=ds/valid.txt\nnames=ds/p.names\n"
                                 "backup=backup/\n")
    (root / "p.cfg").write_text(cfggen.tiny_yolov2(cfggen.TinySpec(
        classes=6, width=96, height=64, width_multiplier=0.25, batch=4, subdivisions=1, max_batches=100000,
        burn_in=5, learning_rate=0.001)))
    return root


def cli(*args, cwd, env=None, **kw):
    return subprocess.Popen([sys.executable, "-m", "model_tools", *map(str, args)], cwd=cwd,
                            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_fork_of_the_debian_binary(darknet_bin):
    found = train.find_darknet(darknet_bin)
    assert found.fork == "pjreddie" and found.chosen_by == "--darknet"


def test_map_flag_on_pjreddie_is_refused(seed_style, darknet_bin):
    done = cli("train", "p.data", "p.cfg", "--darknet", darknet_bin, "--map", cwd=seed_style)
    out, err = done.communicate(timeout=120)
    assert done.returncode == 2 and "-map is a flag of alexeyab and hank-ai" in err and "Traceback" not in err


def test_binary_from_path_is_named(seed_style, darknet_bin, tmp_path):
    (tmp_path / "empty.data").write_text("classes=1\n")
    env = {"DARKNET": "", "PATH": f"{Path(darknet_bin).parent}:/usr/bin:/bin"}
    done = cli("train", tmp_path / "empty.data", seed_style / "p.cfg", cwd=tmp_path, env=env)
    out, err = done.communicate(timeout=120)
    assert f"using darknet {darknet_bin} (pjreddie, chosen by PATH)" in out
    assert "give --darknet or set $DARKNET" in out
    assert done.returncode == 2 and "no train= line" in err  # and the .data problem before darknet runs


def test_missing_labels_stop_before_darknet(seed_style, darknet_bin, tmp_path):
    image = (seed_style / (seed_style / "ds" / "train.txt").read_text().split()[0])
    (tmp_path / "list.txt").write_text(f"{image}\n")
    (tmp_path / "img.jpg").write_bytes(image.read_bytes())  # an image without its .txt
    (tmp_path / "list.txt").write_text(f"{tmp_path / 'img.jpg'}\n")
    (tmp_path / "x.data").write_text(f"classes=6\ntrain={tmp_path / 'list.txt'}\nbackup={tmp_path / 'b'}\n")
    done = cli("train", tmp_path / "x.data", seed_style / "p.cfg", "--darknet", darknet_bin, cwd=tmp_path)
    out, err = done.communicate(timeout=120)
    assert done.returncode == 2 and "would not find the labels" in err
    assert not (tmp_path / "training" / "train.log").exists()  # darknet never started


def darknet_pids(marker: str):
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and cmd[0].endswith(b"darknet") and marker.encode() in b" ".join(cmd):
                pids.append(int(proc.name))
    return pids


def wait_for(condition, what, limit=600):
    """Polls a condition; the limit only keeps a broken run from hanging CI (not a timing assertion)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.2)


@pytest.mark.darknet
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_relative_data_paths_lock_and_stop_with_the_driver(seed_style, darknet_bin, sig, tmp_path):
    backup = seed_style / "backup"
    if backup.exists():
        for f in backup.iterdir():
            f.unlink()
    workdir = tmp_path / "w"
    first = cli("train", "p.data", "p.cfg", "--darknet", darknet_bin, "--workdir", workdir, cwd=seed_style)
    log = workdir / "train.log"
    wait_for(lambda: log.exists() and "images" in log.read_text(errors="replace"), "a first iteration")
    pids = darknet_pids(str(seed_style / "p.cfg"))
    assert pids, "darknet is running, started from the project folder with its relative paths"
    # a second training into the same backup folder is refused while the first runs
    second = cli("train", "p.data", "p.cfg", "--darknet", darknet_bin, "--workdir", tmp_path / "w2",
                 cwd=seed_style)
    _, err2 = second.communicate(timeout=120)
    assert second.returncode == 2 and "another model-tools train (pid" in err2 and str(backup) in err2
    first.send_signal(sig)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 130 and "Traceback" not in err and "run the same command again" in err
    wait_for(lambda: not any(Path(f"/proc/{p}").exists() and "Z" not in _state(p) for p in pids),
             "darknet to end with the driver", limit=60)


def _state(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except (OSError, IndexError):
        return "Z"


def test_backup_dir_is_resolved_from_darknets_folder(tmp_path):
    (tmp_path / "a.data").write_text("backup=bk/\n")
    assert train.backup_dir(tmp_path / "a.data", tmp_path / "run") == (tmp_path / "run" / "bk").resolve()
    (tmp_path / "b.data").write_text("classes=1\n")
    assert train.backup_dir(tmp_path / "b.data", tmp_path) == tmp_path.resolve() / "backup"


def test_checkpoints_of_another_network_are_set_aside(tmp_path):
    spec = dict(classes=2, width=96, height=64, width_multiplier=0.25, batch=4, subdivisions=1, burn_in=5)
    cfg = tmp_path / "m.cfg"
    cfg.write_text(cfggen.tiny_yolov2(cfggen.TinySpec(max_batches=100, **spec)))
    backup, work = tmp_path / "backup", tmp_path / "w"
    backup.mkdir()
    work.mkdir()
    train.set_aside_other_network(backup, cfg, work, log=lambda *_: None)  # stamps the empty folder
    (backup / "m_last.weights").write_bytes(b"x")
    (work / "metrics.csv").write_text("iteration\n")
    # a training setting (max_batches) is not the network: the checkpoint stays, training resumes
    cfg.write_text(cfggen.tiny_yolov2(cfggen.TinySpec(max_batches=900, **spec)))
    train.set_aside_other_network(backup, cfg, work, log=lambda *_: None)
    assert (backup / "m_last.weights").exists()
    # another width multiplier is another network: its checkpoint and metrics move aside
    cfg.write_text(cfggen.tiny_yolov2(cfggen.TinySpec(max_batches=900, **{**spec, "width_multiplier": 0.5})))
    said = []
    train.set_aside_other_network(backup, cfg, work, log=said.append)
    assert not (backup / "m_last.weights").exists() and not (work / "metrics.csv").exists()
    moved = list(backup.glob("other-network-*/m_last.weights"))
    assert len(moved) == 1 and "belong to another network" in said[0]
    assert train.resume_point(backup, "m") is None


def test_learning_check_reads_alexeyabs_last_checkpoint(tmp_path):
    """AlexeyAB writes _last every 100 iterations and numbered files only every 1000: the check
    compares successive _last files, so a run that does not learn stops at iteration 201."""
    from model_tools import cfg, weights

    cfg_path = tmp_path / "m.cfg"
    cfg_path.write_text(cfggen.tiny_yolov2(cfggen.TinySpec(classes=2, width=96, height=64, width_multiplier=0.25,
                                                           batch=4, subdivisions=1)))
    net = cfg.load(cfg_path)
    last = tmp_path / "m_last.weights"
    check = train.LearningCheck(cfg_path, tmp_path, "m")
    last.write_bytes(weights.random(net, seed=1, header=weights.Header(0, 2, 5, 400)).to_bytes())
    check.after(101)
    last.write_bytes(weights.random(net, seed=1, header=weights.Header(0, 2, 5, 800)).to_bytes())
    with pytest.raises(train.TrainingFailed, match="not updating the model"):
        check.after(201)
    learning = train.LearningCheck(cfg_path, tmp_path, "m")
    learning.after(101)
    last.write_bytes(weights.random(net, seed=2, header=weights.Header(0, 2, 5, 1200)).to_bytes())
    learning.after(301)  # parameters moved: no error
    assert learning.done
