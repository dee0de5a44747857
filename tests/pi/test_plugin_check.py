"""deploy/pi/openvino-plugins.sh on stand-in archives with and without the MYRIAD plugin."""
from __future__ import annotations

import subprocess

import pytest

from tests.conftest import REPO
from tests.pi import standin

SCRIPT = REPO / "deploy/pi/openvino-plugins.sh"
NO_MYRIAD = "this OpenVINO has no MYRIAD plugin: the NCS2 will not be used; install"


def check(path):
    return subprocess.run(["bash", str(SCRIPT), str(path)], capture_output=True, text=True)


def test_2022_1_archive_with_myriad_plugin(tmp_path):
    result = check(standin.archive(tmp_path / "ov.tgz", "l_openvino_toolkit_runtime_raspbian_p_2022.1.0",
                                   standin.PLUGINS_2022_1_RASPBIAN))
    assert result.returncode == 0, result.stderr
    assert "MYRIAD: yes (NCS2)" in result.stdout
    assert result.stderr == ""


def test_2021_4_archive_has_myriad_but_cannot_read_our_ir(tmp_path):
    result = check(standin.archive(tmp_path / "ov.tgz", "l_openvino_toolkit_runtime_raspbian_p_2021.4.2",
                                   standin.PLUGINS_2021_4_RASPBIAN))
    assert result.returncode == 3
    assert "MYRIAD: yes (NCS2)" in result.stdout
    assert "cannot load edge-app's IR v11 models: the NCS2 will not be used; install the 2022.1" \
        in result.stderr


def test_2022_3_armhf_archive_has_no_myriad(tmp_path):
    path = standin.archive(tmp_path / "ov.tgz", "l_openvino_toolkit_debian9_2022.3.1_armhf",
                           standin.PLUGINS_2022_3_ARMHF)
    result = check(path)
    assert result.returncode == 3
    assert "MYRIAD: no" in result.stdout and "CPU: yes (ARM CPU plugin)" in result.stdout
    assert NO_MYRIAD in result.stderr and "2022.1 Raspbian runtime" in result.stderr


def test_unpacked_folder_is_inspected_too(tmp_path):
    import tarfile

    path = standin.archive(tmp_path / "ov.tgz", "ov", standin.PLUGINS_2022_1_RASPBIAN)
    with tarfile.open(path) as tar:
        tar.extractall(tmp_path / "unpacked")
    result = check(tmp_path / "unpacked/ov")
    assert result.returncode == 0 and "MYRIAD: yes" in result.stdout


@pytest.mark.parametrize("content", [b"not a tarball", None])
def test_not_an_openvino_archive(tmp_path, content):
    path = tmp_path / "x.tgz"
    if content is not None:
        path.write_bytes(content)
    result = check(path)
    assert result.returncode == 2
    assert "error:" in result.stderr


def test_archive_without_setupvars_is_refused(tmp_path):
    import io
    import tarfile

    path = tmp_path / "other.tgz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("top/runtime/lib/armv7l/libopenvino_intel_myriad_plugin.so")
        tar.addfile(info, io.BytesIO(b""))
    result = check(path)
    assert result.returncode == 2 and "no setupvars.sh" in result.stderr
