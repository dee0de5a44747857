"""deploy/pi/install.sh for real on the Pi's userland, emulated: a Debian Bullseye armhf root
(scripts/pi-root.sh: debootstrap + qemu-user binfmt; Python 3.9.2, Debian's numpy 1.19.5 and
OpenCV 4.5.1 from apt, as on Raspberry Pi OS Bullseye 32-bit).

In the root: install.sh with a stand-in for Intel's 2022.3 armhf archive (tests/pi/standin.py:
setupvars.sh, plugins.xml and plugin names, no Python runtime — the archive cannot be
downloaded here), so the device has no usable OpenVINO and runs the OpenCV-DNN engine on its
CPU; then `edge-app check`, `edge-app run` on the demo clip publishing to a Mosquitto broker on
the host's loopback (a subscriber here checks the messages), and uninstall.sh --purge, after
which the root's files are the ones it had before. Install time and disk use are printed.
Everything runs as root (chroot), so this test is root-only, as CI is.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import REPO
from tests.pi import standin

CACHE = Path(subprocess.run(["bash", str(REPO / "scripts/pi-root.sh"), "--path"], check=True,
                            capture_output=True, text=True).stdout.strip())
HOST_CA = "/tmp/host-ca-certificates.crt"
# what changes in any Debian root when apt runs or time passes, not what install.sh adds
VOLATILE = ("proc/", "dev/", "sys/", "tmp/", "run/", "home/pi/", "var/cache/", "var/lib/apt/",
            "var/lib/dpkg/", "var/log/", "var/lib/systemd/", "root/", "var/tmp/",
            "etc/ld.so.cache", "etc/resolv.conf", "var/lib/ucf/", "etc/machine-id",
            "var/lib/dbus/machine-id",
            # shadow-utils' backups of the files useradd/userdel edit (contents compared below)
            "etc/passwd-", "etc/group-", "etc/shadow-", "etc/gshadow-")


# the compiled resize against its numpy version, on the emulated Pi, at each level it has
NATIVE_CHECK = """
import numpy as np
from edge_app import native, preprocess
lib = native.library()
sizes = [((640, 480), (416, 416)), ((37, 23), (16, 12)), ((1920, 1080), (416, 234))]
levels, cases = [], 0
for level in (0, 1):
    if lib.dk_set_simd(level) != level:
        continue
    levels.append(level)
    for (size, out) in sizes:
        for ch in (3, 1, 4):
            rng = np.random.default_rng(sum(size + out) + ch)
            image = rng.integers(0, 256, (size[1], size[0], ch), dtype=np.uint8)
            got = preprocess.darknet_resize(image, *out, u8=True)
            assert np.array_equal(got, preprocess._darknet_resize_numpy(image, *out, True)), (level, size, ch)
            cases += 1
print(f"levels {levels}: {cases} cases equal")
"""


def sh(*cmd, check=True, timeout=1800, **kw):
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                            timeout=timeout, **kw)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {result.returncode}:\n"
                    f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def files(root: Path) -> set:
    listed = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        rel = "" if rel == "." else rel + "/"
        if rel.startswith(VOLATILE):
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            path = rel + name
            if not (path + "/").startswith(VOLATILE) and not path.startswith(VOLATILE):
                listed.add(path)
    return listed


def du_mb(path: Path) -> float:
    return int(sh("du", "-sxk", path).stdout.split()[0]) / 1024


@pytest.fixture(scope="module")
def pi_root(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("the emulated Pi test needs root (chroot); CI runs as root")
    if not CACHE.is_file():
        pytest.fail(f"{CACHE} missing: scripts/setup.sh builds it (scripts/pi-root.sh)")
    root = tmp_path_factory.mktemp("pi") / "root"
    root.mkdir()
    sh("bash", "-c", f"zstd -dc '{CACHE}' | tar -xf - -C '{root}'")
    # the host's network settings, as a Pi on this network would have them: DNS, and the CA
    # bundle when TLS goes through an intercepting proxy (pip reads PIP_CERT, see in_root)
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    host_ca = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    if host_ca and Path(host_ca).is_file():
        (root / "tmp").mkdir(exist_ok=True)
        shutil.copy(host_ca, root / HOST_CA.lstrip("/"))
    mounts = []
    for kind, target in (("proc", "proc"), ("bind", "dev")):
        (root / target).mkdir(exist_ok=True)
        if kind == "proc":
            sh("mount", "-t", "proc", "proc", root / target)
        else:
            sh("mount", "--bind", "/dev", root / target)
        mounts.append(root / target)
    try:
        yield root
    finally:
        for mount in reversed(mounts):
            subprocess.run(["umount", "-l", str(mount)], check=False)
        shutil.rmtree(root, ignore_errors=True)


def in_root(root: Path, *cmd, check=True, timeout=1800, user=None):
    prefix = ["chroot", root] + (["runuser", "-u", user, "--"] if user else [])
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LANG": "C.UTF-8", "HOME": "/root"}
    if (root / HOST_CA.lstrip("/")).is_file():
        env["PIP_CERT"] = HOST_CA
    for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy"):
        if key in os.environ:
            env[key] = os.environ[key]
    return sh(*prefix, *cmd, check=check, timeout=timeout, env=env)


def test_install_run_uninstall_in_emulated_pi(pi_root, run_cli, broker, subscriber, tmp_path):
    from tests.conftest import model_tools_python

    root = pi_root
    print(f"\nemulated root: {in_root(root, 'uname', '-m').stdout.strip()}, "
          f"{in_root(root, 'python3', '--version', check=False).stdout.strip() or 'no python yet'}")

    # the user's clone (owned by uid 1000), the model export, the clip and the stand-in archive
    home = root / "home/pi"
    clone = home / "edge-vision"
    clone.mkdir(parents=True)
    tracked = sh("git", "-C", REPO, "ls-files", "-z").stdout.split("\0")
    for rel in filter(None, tracked):
        if (REPO / rel).is_file():
            (clone / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, clone / rel)
    run_cli("model_tools", "export", "--cfg", REPO / "demo/demo.cfg", "--weights",
            REPO / "demo/demo.weights", "--names", REPO / "demo/demo.names", "-o", home / "model",
            python=model_tools_python(), check=True)
    run_cli("model_tools", "synth-clip", home / "clip.avi", "--frames", 8, "--seed", 777,
            python=model_tools_python(), check=True)
    archive = standin.archive(home / "l_openvino_toolkit_debian9_2022.3.1_armhf.tgz",
                              "l_openvino_toolkit_debian9_2022.3.1_armhf",
                              standin.PLUGINS_2022_3_ARMHF)
    (home / "edge-app.toml").write_text(f"""
[model]
path = "/opt/edge-app/model"
device = "MYRIAD"
fallback = "CPU"

[source]
uri = "/home/pi/clip.avi"
realtime = false
every_frame = true     # the emulated CPU is slow: do not drop frames, the subscriber counts them

[mqtt]
host = "127.0.0.1"
port = {broker.port}
device_id = "emulated-pi"
""")
    sh("chown", "-R", "1000:1000", home)
    before = files(root)
    accounts = {name: (root / "etc" / name).read_text() for name in ("passwd", "group")}
    size_before = du_mb(root)

    started = time.monotonic()
    install = in_root(root, "/home/pi/edge-vision/deploy/pi/install.sh", "--openvino",
                      f"/home/pi/{archive.name}", "--model", "/home/pi/model", "--config",
                      "/home/pi/edge-app.toml")
    install_s = time.monotonic() - started
    size_after = du_mb(root)
    out = install.stdout + install.stderr
    print(f"install.sh in the emulated root: {install_s:.0f} s; root {size_before:.0f} MB -> "
          f"{size_after:.0f} MB (+{size_after - size_before:.0f} MB); /opt/edge-app "
          f"{du_mb(root / 'opt/edge-app'):.0f} MB (venv {du_mb(root / 'opt/edge-app/venv'):.1f} MB, "
          f"model {du_mb(root / 'opt/edge-app/model'):.1f} MB); apt lists "
          f"{du_mb(root / 'var/lib/apt/lists'):.0f} MB")
    assert "MYRIAD: no" in out and "this OpenVINO has no MYRIAD plugin: the NCS2 will not be used" in out
    assert "systemd is not running here" in out
    # the clone is untouched: nothing of root's in it
    owned_by_root = [p for p in clone.rglob("*") if p.stat().st_uid == 0]
    assert owned_by_root == [], owned_by_root[:5]
    assert not list(clone.rglob("*.egg-info")) and not (clone / "build").exists()
    # the device got edge_app only, with Debian's numpy
    venv_py = "/opt/edge-app/venv/bin/python"
    probe = in_root(root, venv_py, "-c",
                    "import importlib.util as u, numpy, cv2; "
                    "print(numpy.__version__, numpy.__file__, cv2.__version__, "
                    "[m for m in ('model_tools', 'matplotlib', 'tqdm') if u.find_spec(m)])").stdout
    assert "/usr/lib/python3/dist-packages/numpy" in probe and probe.split()[0] == "1.19.5", probe
    assert probe.strip().endswith("[]"), probe
    run_sh = (root / "opt/edge-app/run.sh").read_text()
    assert run_sh.startswith("#!/bin/bash") and 'set --' in run_sh

    # edge-app check: the runtime report, the same plain message, the CPU path
    check = in_root(root, "/opt/edge-app/run.sh", "check", "--config", "/etc/edge-app/edge-app.toml",
                    user="edge-app", check=False)
    report = check.stdout + check.stderr
    print(report)
    assert check.returncode == 0, report
    assert "OpenCV DNN" in report and "ready" in report
    # the install built the compiled resize with the Pi's gcc (armhf, whose baseline has no
    # NEON): it runs its NEON level under qemu's Cortex-A-like CPU, and gives numpy's values at
    # each level, bit for bit
    assert "darknet resize: compiled: loaded _dkresize" in report and "(128-bit shuffles)" in report, report
    same = in_root(root, venv_py, "-c", NATIVE_CHECK, user="edge-app", check=False, timeout=900)
    print(same.stdout)
    assert same.returncode == 0 and "levels [0, 1]: 18 cases equal" in same.stdout, same.stdout + same.stderr

    # edge-app run on the clip through the OpenCV-DNN CPU path, publishing to the host's broker
    run = in_root(root, "/opt/edge-app/run.sh", "run", "--config", "/etc/edge-app/edge-app.toml",
                  user="edge-app", check=False, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "FALLING BACK" in run.stderr and "OpenCV DNN" in run.stderr
    schema = json.loads((REPO / "edge_app/schemas/detections.schema.json").read_text())
    subscriber.wait_for(lambda: len(subscriber.payloads("detections")) >= 8,
                        what="8 detection messages")
    messages = subscriber.payloads("detections")
    assert sorted(m["frame_id"] for m in messages) == list(range(8))
    for message in messages:
        jsonschema.validate(message, schema)
    assert sum(len(m["detections"]) for m in messages) > 0, "the demo model found nothing"
    assert {m["device_id"] for m in messages} == {"emulated-pi"}

    # uninstall --purge: the root is back to what it was
    in_root(root, "/home/pi/edge-vision/deploy/pi/uninstall.sh", "--purge", timeout=1800)
    after = files(root)
    assert after - before == set(), sorted(after - before)[:20]
    assert before - after == set(), sorted(before - after)[:20]
    for name, text in accounts.items():
        assert (root / "etc" / name).read_text() == text, f"/etc/{name} differs after uninstall"
