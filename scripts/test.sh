#!/usr/bin/env bash
# The test command: installs what is missing, then runs
#   1. the whole suite on the training-box stack (.venv, current OpenVINO), and
#   2. the edge suite on the Pi's stack (.venv39: Python 3.9 + OpenVINO 2022.3.1), loading IRs
#      exported by the training-box stack, as a deployed device does.
# Extra arguments go to both pytest runs (e.g. -k decode).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/scripts/setup.sh"
cd "$REPO"
export PYTHONDONTWRITEBYTECODE=1

echo "==> tests on $(.venv/bin/python --version), OpenVINO $(.venv/bin/python -c 'import openvino; print(openvino.__version__)')"
.venv/bin/python -m pytest -p no:cacheprovider "$@"

if [ "${SKIP_PY39:-0}" != 1 ]; then
  echo "==> edge tests on $(.venv39/bin/python --version), OpenVINO $(.venv39/bin/python -c 'from openvino.runtime import get_version; print(get_version())')"
  MODEL_TOOLS_PYTHON="$REPO/.venv/bin/python" .venv39/bin/python -m pytest -p no:cacheprovider tests/edge "$@"
fi
