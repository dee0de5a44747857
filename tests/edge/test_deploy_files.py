"""The deployment files: shellcheck-clean scripts, a unit that systemd-analyze accepts."""
import re
import shutil
import subprocess

import pytest

from tests.conftest import REPO

SCRIPTS = sorted(str(p) for p in [*REPO.glob("deploy/*/*.sh"), *REPO.glob("scripts/*.sh"),
                                  REPO / ".ci/run"])


def tool(name):
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} not installed (scripts/setup.sh installs it)")
    return path


def test_shell_scripts_are_shellcheck_clean():
    result = subprocess.run([tool("shellcheck"), *SCRIPTS], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def unit_with_runnable_exec(tmp_path):
    """The unit as shipped, with ExecStart pointing at an executable that exists here (verify
    insists on it; /opt/edge-app exists only on a device)."""
    runner = tmp_path / "run.sh"
    runner.write_text("#!/bin/sh\n")
    runner.chmod(0o755)
    text = (REPO / "systemd/edge-app.service").read_text()
    assert "ExecStart=/opt/edge-app/run.sh run --config /etc/edge-app/edge-app.toml" in text
    unit = tmp_path / "edge-app.service"
    unit.write_text(text.replace("/opt/edge-app/run.sh", str(runner)))
    return unit


def test_unit_passes_systemd_analyze_verify(tmp_path):
    unit = unit_with_runnable_exec(tmp_path)
    result = subprocess.run([tool("systemd-analyze"), "verify", str(unit)], capture_output=True, text=True)
    complaints = [l for l in (result.stdout + result.stderr).splitlines() if "edge-app.service" in l]
    assert result.returncode == 0 and complaints == [], result.stdout + result.stderr


def test_unit_security_exposure(tmp_path):
    unit = unit_with_runnable_exec(tmp_path)
    result = subprocess.run([tool("systemd-analyze"), "security", "--offline=true", str(unit)],
                            capture_output=True, text=True)
    match = re.search(r"Overall exposure level for edge-app.service: ([0-9.]+) (\w+)", result.stdout)
    assert match, result.stdout + result.stderr
    print(f"systemd-analyze security exposure: {match.group(1)} {match.group(2)}")
    assert float(match.group(1)) <= 2.0  # README states 1.9 OK; a regression shows here


def test_unit_is_notify_with_watchdog():
    text = (REPO / "systemd/edge-app.service").read_text()
    for line in ("Type=notify", "WatchdogSec=", "User=edge-app", "Restart=always",
                 "RestartPreventExitStatus=2"):
        assert line in text


def test_udev_rules_cover_both_stick_ids():
    text = (REPO / "systemd/97-myriad-usbboot.rules").read_text()
    assert 'ATTRS{idProduct}=="2485", ATTRS{idVendor}=="03e7"' in text
    assert 'ATTRS{idProduct}=="f63b", ATTRS{idVendor}=="03e7"' in text
    assert text.count('ENV{ID_MM_DEVICE_IGNORE}="1"') == 2


def test_unit_bounds_memory_and_tasks():
    """A leak or a runaway thread pool must end in a restart of the service, not a Pi that swaps
    to a halt: the limits are set, and below the Pi 3B+'s 1 GB."""
    text = (REPO / "systemd/edge-app.service").read_text()
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    limits = {key: int(num) * units[unit] for key, num, unit in
              re.findall(r"^(MemoryHigh|MemoryMax)=(\d+)([KMG])$", text, re.M)}
    assert set(limits) == {"MemoryHigh", "MemoryMax"}, text
    assert limits["MemoryHigh"] < limits["MemoryMax"] < 1 << 30
    tasks = re.search(r"^TasksMax=(\d+)$", text, re.M)
    assert tasks and 16 <= int(tasks.group(1)) <= 256
