#!/usr/bin/env bash
# Removes what deploy/pi/install.sh installed. Keeps /etc/edge-app (config, secrets) and the
# OpenVINO runtime unless --purge is given.
set -euo pipefail
PURGE=0
[ "${1:-}" = "--purge" ] && PURGE=1
[ "$(id -u)" -eq 0 ] || { echo "uninstall.sh: error: run as root (sudo)" >&2; exit 1; }

if systemctl list-unit-files edge-app.service >/dev/null 2>&1; then
  systemctl disable --now edge-app.service 2>/dev/null || true
fi
rm -f /etc/systemd/system/edge-app.service
systemctl daemon-reload
rm -f /etc/udev/rules.d/97-myriad-usbboot.rules
udevadm control --reload-rules 2>/dev/null || true
rm -rf /opt/edge-app
id edge-app >/dev/null 2>&1 && userdel edge-app
getent group edge-app >/dev/null && groupdel edge-app
if [ "$PURGE" -eq 1 ]; then
  rm -rf /etc/edge-app /opt/intel/openvino_2022
fi
echo "edge-app removed$([ "$PURGE" -eq 1 ] && echo ", config and OpenVINO purged" || echo "; /etc/edge-app kept (--purge removes it)")"
