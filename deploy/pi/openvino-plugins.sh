#!/usr/bin/env bash
# Says which inference devices an OpenVINO runtime archive (.tgz) or unpacked folder can drive,
# before anything is installed. Used by install.sh; usable on its own:
#
#   deploy/pi/openvino-plugins.sh l_openvino_toolkit_debian9_2022.3.1.9227.cf2c7da5689_armhf.tgz
#
# Prints one line per device found (MYRIAD, CPU) and, when the NCS2 cannot be used, the plain
# verdict on stderr. Exit status: 0 the NCS2 can be used, 3 it cannot (no MYRIAD plugin, or a
# 2021.x runtime that cannot read our IR v11), 2 not an OpenVINO runtime. Why: the 2022.3 armhf archive has no MYRIAD plugin (docs/ncs2-runtimes.md).
set -euo pipefail

NO_MYRIAD="this OpenVINO has no MYRIAD plugin: the NCS2 will not be used; install the 2022.1 Raspbian runtime (l_openvino_toolkit_runtime_raspbian_p_2022.1.*.tgz) instead (docs/ncs2-runtimes.md)"

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
if [ "$myriad" = 0 ]; then echo "$NO_MYRIAD" >&2; exit 3; fi
# 2021.x (Inference Engine API, libinference_engine.so) reads IR v10 only; model-tools exports
# IR v11 (API 2.0), which 2021.4.2 refuses ("Unknown model format"), so its stick is no use here
if has '/libinference_engine\.so$' && ! has '/libopenvino\.so(\.[0-9.]+)?$'; then
  echo "this OpenVINO is a 2021.x runtime (Inference Engine API), which cannot load edge-app's IR v11 models: the NCS2 will not be used; install the 2022.1 Raspbian runtime instead (docs/ncs2-runtimes.md)" >&2
  exit 3
fi
exit 0
