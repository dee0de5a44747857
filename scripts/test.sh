#!/usr/bin/env bash
# The test command: installs what is missing, then runs, printing each stage's time:
#   1. the whole suite on the training-box stack (.venv, current OpenVINO), but the emulated Pi;
#   2. the edge suite on each of the Pi's OpenVINO API levels (Python 3.9: .venv39 = 2022.3.1,
#      .venv39-ov2022.1 = 2022.1.0; docs/ncs2-runtimes.md), loading IRs exported by the
#      training-box stack, as a deployed device does;
#   3. the emulated Pi (tests/pi/test_emulated_pi.py): deploy/pi/install.sh in a Bullseye armhf
#      root under qemu-user, then check, run and uninstall there (root only; SKIP_PI_ROOT=1 skips).
# Extra arguments go to every pytest run (e.g. -k decode).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export PYTHONDONTWRITEBYTECODE=1
export EDGE_REQUIRE_NATIVE=1  # the compiled resize must be there (tests/edge/test_preprocess.py)
export MODEL_TOOLS_REQUIRE_NATIVE=1  # and the compiled log scanner (tests/tools/test_log_differential.py)

stage_start=$SECONDS
timings=()
stage_done() {  # name
  local took=$((SECONDS - stage_start))
  timings+=("$(printf '%-46s %4d s' "$1" "$took")")
  printf '\033[1m==> stage "%s": %d s\033[0m\n' "$1" "$took"
  stage_start=$SECONDS
}
summary() {
  echo "==> stage times"
  printf '    %s\n' "${timings[@]}"
  echo "    total $SECONDS s"
}
trap summary EXIT

bash "$REPO/scripts/setup.sh"
stage_done "setup"

echo "==> tests on $(.venv/bin/python --version), OpenVINO $(.venv/bin/python -c 'import openvino; print(openvino.__version__)')"
.venv/bin/python -m pytest -p no:cacheprovider --ignore=tests/pi/test_emulated_pi.py "$@"
stage_done "suite, training-box stack"

if [ "${SKIP_PY39:-0}" != 1 ]; then
  for venv in .venv39 .venv39-ov2022.1; do
    version="$("$venv/bin/python" -c 'from openvino.runtime import get_version; print(get_version())')"
    echo "==> edge tests on $("$venv/bin/python" --version), OpenVINO $version"
    MODEL_TOOLS_PYTHON="$REPO/.venv/bin/python" "$venv/bin/python" -m pytest -p no:cacheprovider tests/edge "$@"
    stage_done "edge suite, OpenVINO ${version%%-*}"
  done
fi

if [ "${SKIP_PI_ROOT:-0}" != 1 ]; then
  echo "==> the emulated Raspberry Pi (Bullseye armhf under qemu-user)"
  .venv/bin/python -m pytest -p no:cacheprovider -s tests/pi/test_emulated_pi.py "$@"
  stage_done "emulated Pi: install, check, run, uninstall"
fi
