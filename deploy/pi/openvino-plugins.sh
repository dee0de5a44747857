#!/usr/bin/env bash
# Says which inference devices an OpenVINO runtime archive (.tgz) or unpacked folder can drive,
# before anything is installed. Used by install.sh; usable on its own:
#
#   deploy/pi/openvino-plugins.sh l_openvino_toolkit_debian9_2022.3.1.9227.cf2c7da5689_armhf.tgz
#
# Prints one line per device found (MYRIAD, CPU) and, when the archive has no MYRIAD plugin,
# the plain verdict on stderr. Exit status: 0 MYRIAD plugin present, 3 absent, 2 not an
# OpenVINO runtime. Why: the 2022.3 armhf archive has no MYRIAD plugin (docs/ncs2-runtimes.md).
set -euo pipefail

NO_MYRIAD="this OpenVINO has no MYRIAD plugin: the NCS2 will not be used; install the 2022.1 Raspbian runtime (l_openvino_toolkit_runtime_raspbian_p_2022.1.*.tgz) or 2021.4.2 LTS (l_openvino_toolkit_runtime_raspbian_p_2021.4.*.tgz) instead (docs/ncs2-runtimes.md)"

src="${1:?usage: openvino-plugins.sh <archive.tgz or unpacked folder>}"
if [ -d "$src" ]; then
  listing="$(cd "$src" && find . -print)"
elif [ -f "$src" ]; then
  listing="$(tar -tzf "$src" 2>/dev/null)" || {
    echo "openvino-plugins.sh: error: $src is not a readable .tgz archive" >&2; exit 2; }
else
  echo "openvino-plugins.sh: error: $src not found" >&2; exit 2
fi

has() { grep -Eq "$1" <<<"$listing"; }

has '(^|/)setupvars\.sh$' || {
  echo "openvino-plugins.sh: error: $src does not look like an OpenVINO runtime (no setupvars.sh)" >&2
  exit 2; }

# 2022.x names its plugins libopenvino_<vendor>_<device>_plugin.so, 2021.4 lib<Device>Plugin.so
myriad=0; cpu=""
has '/libopenvino_intel_myriad_plugin\.so$|/libmyriadPlugin\.so$' && myriad=1
if has '/libopenvino_arm_cpu_plugin\.so$|/libarmPlugin\.so$'; then cpu="ARM CPU plugin"
elif has '/libopenvino_intel_cpu_plugin\.so$|/libMKLDNNPlugin\.so$'; then cpu="Intel CPU plugin"
fi

if [ "$myriad" = 1 ]; then echo "MYRIAD: yes (NCS2)"; else echo "MYRIAD: no"; fi
if [ -n "$cpu" ]; then echo "CPU: yes ($cpu)"; else echo "CPU: no"; fi
if [ "$myriad" = 1 ]; then exit 0; fi
echo "$NO_MYRIAD" >&2
exit 3
