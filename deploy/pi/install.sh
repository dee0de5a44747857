#!/usr/bin/env bash
# Installs edge-app on Raspberry Pi OS Bullseye (armhf, Python 3.9), with or without an NCS2.
# Idempotent: run it again to upgrade the package, the model or the unit; the config is kept.
#
#   sudo deploy/pi/install.sh --model /path/to/export-folder \
#        [--openvino /path/or/URL/l_openvino_toolkit_runtime_raspbian_p_2022.1.0.643.tgz] \
#        [--config my.toml]
#
# Which OpenVINO drives the NCS2 from a Pi: docs/ncs2-runtimes.md (2022.1 Raspbian runtime or
# 2021.4.2 LTS; the 2022.3 armhf archive has no MYRIAD plugin). Without --openvino, or with an
# archive that has no usable plugin, the device runs the OpenCV-DNN engine on its CPU
# (model.engine = "opencv"; the export bundle carries the darknet cfg + weights).
#
# What it does:
#   1. apt (--no-install-recommends): deploy/pi/apt-packages.txt (python3 venv, pip, numpy,
#      opencv, systemd; libusb) and apt-build-packages.txt (gcc, for the compiled resize);
#      python3-picamera2 when the archive has it (Raspberry Pi OS)
#   2. the OpenVINO runtime, if given, unpacked into /opt/intel/openvino_2022 (plugins reported)
#   3. udev rules for the stick (03e7:2485, 03e7:f63b)
#   4. user and group edge-app (groups video, users, plugdev)
#   5. /opt/edge-app/venv (system site packages: numpy, OpenCV, picamera2, systemd from apt) with
#      edge_app only, built from a temporary copy; paho-mqtt and tomli from PyPI
#   6. /etc/edge-app/edge-app.toml (kept if it exists), model in /opt/edge-app/model
#   7. systemd unit enabled and (re)started when systemd is running
set -euo pipefail

PREFIX=/opt/edge-app
ETC=/etc/edge-app
STATE=/var/lib/edge-app-install
OPENVINO_DIR=/opt/intel/openvino_2022
OPENVINO_SRC=""
MODEL_SRC=""
CONFIG_SRC=""
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
die() { echo "install.sh: error: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --openvino) OPENVINO_SRC="${2:?--openvino needs a path or URL}"; shift 2 ;;
    --model) MODEL_SRC="${2:?--model needs a folder}"; shift 2 ;;
    --config) CONFIG_SRC="${2:?--config needs a file}"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "unknown option: $1" >&2; usage 2 ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die "run as root (sudo)"
[ -z "$CONFIG_SRC" ] || [ -f "$CONFIG_SRC" ] || die "config $CONFIG_SRC not found"
if [ -n "$MODEL_SRC" ] && [ -z "$(ls "$MODEL_SRC"/*.json 2>/dev/null)" ]; then
  die "$MODEL_SRC has no model metadata (.json from model-tools export)"
fi

# everything temporary lives here and goes, whatever happens
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# shellcheck source=/dev/null
[ -r /etc/os-release ] && . /etc/os-release
if [ "${VERSION_CODENAME:-}" != "bullseye" ]; then
  echo "warning: written for Raspberry Pi OS Bullseye (found ${PRETTY_NAME:-unknown})" >&2
fi

echo "==> apt packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
for list in apt-packages.txt apt-build-packages.txt; do
  [ -f "$HERE/$list" ] || die "$HERE/$list missing: run install.sh from a full clone"
done
mapfile -t wanted < <(cat "$HERE/apt-packages.txt" "$HERE/apt-build-packages.txt" | grep -v '^#')
if apt-cache show python3-picamera2 >/dev/null 2>&1; then
  wanted+=(python3-picamera2)
else
  echo "note: python3-picamera2 is not in this system's apt sources (it is in the Raspberry Pi" \
       "OS archive only): the Pi camera will not be available, video files and V4L2/USB" \
       "cameras will" >&2
fi
mkdir -p "$STATE"
touch "$STATE/created-dirs"
# directories that did not exist, in creation order: uninstall.sh --purge removes them (if empty)
make_dirs() {
  local dir
  for dir in "$@"; do
    if [ ! -d "$dir" ]; then mkdir "$dir" && echo "$dir" >> "$STATE/created-dirs"; fi
  done
}
installed() { dpkg-query -W -f='${db:Status-Abbrev} ${binary:Package}\n' | awk '$1 == "ii" {print $2}' | sort; }
had="$(installed)"
apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null
# every package this installer added, dependencies included (apt's autoremove keeps one that
# another installed package merely suggests, binutils for one), for `uninstall.sh --purge`
# (kept across re-runs)
touch "$STATE/apt-packages"
comm -13 <(echo "$had") <(installed) >> "$STATE/apt-packages"

if [ -n "$OPENVINO_SRC" ]; then
  echo "==> OpenVINO runtime"
  archive="$OPENVINO_SRC"
  if [[ "$OPENVINO_SRC" == http://* || "$OPENVINO_SRC" == https://* ]]; then
    archive="$WORK/openvino.tgz"
    curl -fsSL -o "$archive" "$OPENVINO_SRC" || die "cannot download $OPENVINO_SRC"
  fi
  [ -f "$archive" ] || die "OpenVINO archive $archive not found"
  status=0
  bash "$HERE/openvino-plugins.sh" "$archive" || status=$?
  [ "$status" -ne 2 ] || die "$OPENVINO_SRC is not an OpenVINO runtime archive"
  mkdir -p "$WORK/unpack"
  make_dirs "$(dirname "$OPENVINO_DIR")"
  tar -xzf "$archive" -C "$WORK/unpack" || die "cannot unpack $archive"
  top="$(dirname "$(find "$WORK/unpack" -maxdepth 2 -name setupvars.sh | head -n1)")"
  rm -rf "$OPENVINO_DIR.new"
  mv "$top" "$OPENVINO_DIR.new"
  rm -rf "$OPENVINO_DIR.old"
  if [ -d "$OPENVINO_DIR" ]; then mv "$OPENVINO_DIR" "$OPENVINO_DIR.old"; fi
  mv "$OPENVINO_DIR.new" "$OPENVINO_DIR"
  rm -rf "$OPENVINO_DIR.old"
elif [ -f "$OPENVINO_DIR/setupvars.sh" ]; then
  echo "==> OpenVINO runtime: keeping $OPENVINO_DIR"
else
  echo "note: no OpenVINO runtime given (--openvino): the device runs the OpenCV-DNN engine on" \
       "its CPU; for the NCS2 see docs/ncs2-runtimes.md" >&2
fi

echo "==> udev rules for the NCS2"
make_dirs /etc/udev /etc/udev/rules.d
install -m 0644 "$REPO/systemd/97-myriad-usbboot.rules" /etc/udev/rules.d/97-myriad-usbboot.rules
if ! { command -v udevadm >/dev/null && udevadm control --reload-rules 2>/dev/null && udevadm trigger; }; then
  echo "note: udev is not running here; the rules apply after a reboot or re-plug" >&2
fi

echo "==> user edge-app"
getent group edge-app >/dev/null || groupadd --system edge-app
id edge-app >/dev/null 2>&1 || useradd --system --gid edge-app --home-dir "$PREFIX" \
  --no-create-home --shell /usr/sbin/nologin edge-app
for group in video users plugdev; do
  if getent group "$group" >/dev/null; then usermod -a -G "$group" edge-app; fi
done

echo "==> $PREFIX (edge_app only)"
install -d -m 0755 "$PREFIX"
[ -x "$PREFIX/venv/bin/python" ] || python3 -m venv --system-site-packages "$PREFIX/venv"
# build from a copy: the user's clone stays untouched (no root-owned build/ or *.egg-info)
mkdir -p "$WORK/src"
cp -r "$REPO/edge_app" "$WORK/src/"
find "$WORK/src" -name __pycache__ -prune -exec rm -rf {} +
# a compiled library built in the clone is for the machine that built it: build here, or not at all
find "$WORK/src" -name '*.so' -delete
cp "$HERE/setup_edge.py" "$WORK/src/setup.py"
cp "$REPO/setup.cfg" "$WORK/src/repo-setup.cfg"
# numpy stays Debian's: pin pip to the version apt installed
numpy_version="$(python3 -c 'import numpy; print(numpy.__version__)')"
echo "numpy==$numpy_version" > "$WORK/constraints.txt"
# no build isolation: Bullseye's pip 20.3.4 would fetch a new setuptools that breaks on
# Debian's distutils ("install_layout"); the venv's own setuptools builds this plain setup.py
"$PREFIX/venv/bin/pip" install -q --disable-pip-version-check --no-build-isolation \
  -c "$WORK/constraints.txt" --upgrade "$WORK/src" \
  || die "pip could not install edge_app into $PREFIX/venv (see above)"
[ "$("$PREFIX/venv/bin/python" -c 'import numpy; print(numpy.__version__)')" = "$numpy_version" ] \
  || die "numpy in $PREFIX/venv is not Debian's $numpy_version"

# bash, and the caller's arguments set aside: setupvars.sh is a bash script whose option loop
# would otherwise eat them (edge-app would start without --config)
cat > "$PREFIX/run.sh.new" <<RUN
#!/bin/bash
# OpenVINO's environment (when installed), then edge-app (generated by deploy/pi/install.sh)
args=("\$@")
set --
if [ -f "$OPENVINO_DIR/setupvars.sh" ]; then
  # shellcheck source=/dev/null
  source "$OPENVINO_DIR/setupvars.sh" >/dev/null
fi
exec "$PREFIX/venv/bin/edge-app" "\${args[@]}"
RUN
chmod 0755 "$PREFIX/run.sh.new" && mv "$PREFIX/run.sh.new" "$PREFIX/run.sh"
install -m 0644 "$REPO/README.md" "$PREFIX/README.md"

if [ -n "$MODEL_SRC" ]; then
  rm -rf "$PREFIX/model.new" && cp -r "$MODEL_SRC" "$PREFIX/model.new"
  rm -rf "$PREFIX/model.old"
  if [ -d "$PREFIX/model" ]; then mv "$PREFIX/model" "$PREFIX/model.old"; fi
  mv "$PREFIX/model.new" "$PREFIX/model" && rm -rf "$PREFIX/model.old"
fi

echo "==> $ETC"
install -d -m 0750 -g edge-app "$ETC"
if [ -n "$CONFIG_SRC" ]; then
  install -m 0640 -g edge-app "$CONFIG_SRC" "$ETC/edge-app.toml"
elif [ ! -f "$ETC/edge-app.toml" ]; then
  install -m 0640 -g edge-app "$REPO/systemd/edge-app.toml" "$ETC/edge-app.toml"
fi
[ -f "$ETC/environment" ] || install -m 0640 -g edge-app /dev/null "$ETC/environment"

echo "==> checking the configuration"
runuser -u edge-app -- "$PREFIX/run.sh" check --config "$ETC/edge-app.toml" \
  || echo "warning: 'edge-app check' reported problems (see above); the service is installed anyway" >&2

echo "==> systemd unit"
make_dirs /etc/systemd /etc/systemd/system
install -m 0644 "$REPO/systemd/edge-app.service" /etc/systemd/system/edge-app.service
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable edge-app.service
  systemctl restart edge-app.service
  echo "installed; follow it with: journalctl -u edge-app -f"
else
  echo "note: systemd is not running here (container, chroot or image build): the unit is" \
       "installed but not enabled; on the device run: systemctl enable --now edge-app" >&2
  echo "installed"
fi
