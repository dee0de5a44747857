#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian/Ubuntu machine, idempotently:
#   - Debian packages: darknet (the reference and training engine), mosquitto (MQTT broker),
#     plus the shell linter and systemd-analyze (packages shellcheck, systemd) for the deploy checks
#     and chromium (headless) for the live-view tests
#   - .venv   : the training-box side (current OpenVINO, OpenCV 4.x, matplotlib, tqdm, pytest)
#   - .venv39, .venv39-ov2022.1 : the Pi's Python 3.9 with OpenVINO 2022.3.1 and 2022.1.0, for
#               the edge tests; skipped with SKIP_PY39=1
#   - the emulated Pi root (scripts/pi-root.sh, cached in /var/cache/edge-vision); SKIP_PI_ROOT=1
# Sourced by scripts/test.sh and scripts/demo.sh; safe to run on its own.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

need_apt=()
for pkg in darknet mosquitto shellcheck systemd chromium gcc libc6-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
  log "apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 9))' || {
  echo "error: $PY is older than 3.9; set PYTHON=/path/to/python3.9+" >&2; exit 1; }

pip_quiet() { "$@" --disable-pip-version-check -q 2>&1 | grep -v -e "^WARNING: Location" -e "Running pip as the 'root'" || true; }

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import openvino, cv2, edge_app, model_tools, jinja2, hypothesis, libstb' 2>/dev/null; then
  log "creating .venv ($("$PY" --version))"
  "$PY" -m venv .venv
  pip_quiet .venv/bin/pip install --upgrade pip
  pip_quiet .venv/bin/pip install -e ".[train,test]"
  .venv/bin/python -c 'import openvino, cv2, edge_app, model_tools'
fi

find_py39() {
  # pyenv's shims answer `command -v python3.9` even when that version is not selected: try each
  local candidate
  for candidate in "${PYTHON39:-}" "$HOME"/.pyenv/versions/3.9*/bin/python3.9 /usr/bin/python3.9 python3.9; do
    [ -n "$candidate" ] || continue
    if "$candidate" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 9))' 2>/dev/null; then
      command -v "$candidate"; return
    fi
  done
  return 1
}

# The Pi's API levels, each in a Python 3.9 venv with the x86 wheel of a release that drives an
# NCS2 from a Pi (docs/ncs2-runtimes.md): the edge suite runs on each (scripts/test.sh).
#   .venv39          OpenVINO 2022.3.1 (API 2.0; its armhf archive has the ARM CPU plugin)
#   .venv39-ov2022.1 OpenVINO 2022.1.0 (API 2.0; its Raspbian archive has the MYRIAD plugin),
#                    with numpy 1.19.5, Bullseye's numpy
make_py39_venv() {
  local dir="$1" openvino="$2" numpy="$3" opencv="$4"
  if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c 'import openvino.runtime, cv2, edge_app, jinja2, hypothesis' 2>/dev/null; then
    PY39="$(find_py39)" || { echo "error: no Python 3.9 found for the Pi-stack tests; install one" \
      "(pyenv install 3.9.18) or set PYTHON39=..., or SKIP_PY39=1 to skip them" >&2; exit 1; }
    log "creating $dir ($PY39, OpenVINO $openvino)"
    "$PY39" -m venv "$dir"
    pip_quiet "$dir/bin/pip" install --upgrade pip
    pip_quiet "$dir/bin/pip" install -e ".[test]" "openvino==$openvino" "$numpy" "$opencv"
    "$dir/bin/python" -c 'import openvino.runtime, cv2, edge_app'
  fi
}

if [ "${SKIP_PY39:-0}" != 1 ]; then
  make_py39_venv .venv39 2022.3.1 "numpy<2" "opencv-python-headless>=4.5,<5"
  make_py39_venv .venv39-ov2022.1 2022.1.0 "numpy==1.19.5" "opencv-python-headless>=4.5,<4.9"
fi

# The compiled parts (edge_app/native resize, model_tools/native log scanner) in place, for runs
# from the checkout (PYTHONPATH=repo); cheap when up to date. The tests require them
# (EDGE_REQUIRE_NATIVE=1, MODEL_TOOLS_REQUIRE_NATIVE=1 in scripts/test.sh).
if ! .venv/bin/python setup.py -q build_ext --inplace >"$REPO/.cache-native-build.log" 2>&1 \
   || ! ls edge_app/native/_dkresize*.so model_tools/native/_logscan*.so >/dev/null 2>&1; then
  cat "$REPO/.cache-native-build.log" >&2
  echo "error: edge_app/native or model_tools/native could not be built (see above)" >&2; exit 1
fi
rm -f "$REPO/.cache-native-build.log"

# The emulated Raspberry Pi (tests/pi): a cached Debian Bullseye armhf root, root only
if [ "${SKIP_PI_ROOT:-0}" != 1 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    bash "$REPO/scripts/pi-root.sh"
  else
    log "not root: the emulated Pi root is not built (tests/pi/test_emulated_pi.py will fail);" \
      "run scripts/pi-root.sh as root, or SKIP_PI_ROOT=1"
  fi
fi
