#!/usr/bin/env bash
# Removes what deploy/pi/install.sh installed. Keeps /etc/edge-app (config, secrets), the
# OpenVINO runtime and the apt packages the installer added unless --purge is given.
set -euo pipefail
PURGE=0
[ "${1:-}" = "--purge" ] && PURGE=1
[ "$(id -u)" -eq 0 ] || { echo "uninstall.sh: error: run as root (sudo)" >&2; exit 1; }
STATE=/var/lib/edge-app-install

running_systemd() { command -v systemctl >/dev/null && [ -d /run/systemd/system ]; }

if running_systemd && systemctl list-unit-files edge-app.service >/dev/null 2>&1; then
  systemctl disable --now edge-app.service 2>/dev/null || true
fi
rm -f /etc/systemd/system/edge-app.service
if running_systemd; then systemctl daemon-reload; fi
rm -f /etc/udev/rules.d/97-myriad-usbboot.rules
if command -v udevadm >/dev/null; then udevadm control --reload-rules 2>/dev/null || true; fi
rm -rf /opt/edge-app
if id edge-app >/dev/null 2>&1; then userdel edge-app; fi
if getent group edge-app >/dev/null; then groupdel edge-app; fi
if [ "$PURGE" -eq 1 ]; then
  rm -rf /etc/edge-app /opt/intel/openvino_2022
  if [ -s "$STATE/created-dirs" ]; then  # the installer's own, newest first, if now empty
    tac "$STATE/created-dirs" | while read -r dir; do rmdir "$dir" 2>/dev/null || true; done
  fi
  if [ -s "$STATE/apt-packages" ]; then
    mapfile -t added < <(sort -u "$STATE/apt-packages")
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq --autoremove "${added[@]}" >/dev/null
  fi
  rm -rf "$STATE"
fi
if [ "$PURGE" -eq 1 ]; then
  echo "edge-app removed, with its config, OpenVINO and the apt packages install.sh added"
else
  echo "edge-app removed; /etc/edge-app, OpenVINO and apt packages kept (--purge removes them)"
fi
