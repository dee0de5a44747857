"""The AWS training-instance template: cfn-lint clean, region independent, parameters present."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

TEMPLATE = REPO / "deploy/aws/training-instance.yaml"


def cfn_lint():
    found = shutil.which("cfn-lint") or str(Path(sys.executable).parent / "cfn-lint")
    if not Path(found).exists():
        pytest.fail("cfn-lint not installed (pip install cfn-lint; scripts/setup.sh does)")
    return found


def test_template_is_cfn_lint_clean():
    result = subprocess.run([cfn_lint(), str(TEMPLATE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_template_parameters_and_region_independence():
    text = TEMPLATE.read_text()
    for parameter in ("AmiId:", "InstanceType:", "KeyName:", "VolumeSize:", "DarknetRepoUrl:"):
        assert parameter in text
    assert "ami-" not in text.split("Resources:")[0].replace("ami-id", "")  # no region-bound AMI id
    assert "/aws/service/deeplearning/ami/" in text and "bootstrap.sh" in text
