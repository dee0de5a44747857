"""What this device's inference runtime can do, for `edge-app check` and the start-up log.

The same plain verdict as deploy/pi/openvino-plugins.sh gives on the archive: whether the NCS2
(OpenVINO's MYRIAD plugin) can be used, and if not, what to install (docs/ncs2-runtimes.md).
A MYRIAD plugin that is registered but cannot be loaded (the 2022.1 x86 wheel's plugins.xml
names it, the library is absent) counts as absent; a loadable plugin without a stick in
`available_devices` means the stick is unplugged or not allowed by udev.
"""
from __future__ import annotations

from typing import List, NamedTuple, Optional

NO_MYRIAD = ("this OpenVINO has no MYRIAD plugin: the NCS2 will not be used; install the 2022.1 "
             "Raspbian runtime instead (docs/ncs2-runtimes.md)")
NO_OPENVINO = ("OpenVINO is not installed: the NCS2 will not be used; install the 2022.1 Raspbian "
               "runtime (deploy/pi/install.sh --openvino ...; docs/ncs2-runtimes.md)")
NO_STICK = ("the MYRIAD plugin is there but no NCS2 was found: plug the stick in (USB 3 port), "
            "check the udev rules (systemd/97-myriad-usbboot.rules)")


class RuntimeReport(NamedTuple):
    openvino_version: Optional[str]  # None: OpenVINO not importable
    devices: List[str]
    myriad_plugin: bool
    myriad_usable: bool
    verdict: str  # "" when the NCS2 can be used

    def lines(self) -> List[str]:
        if self.openvino_version is None:
            return ["OpenVINO: not installed", f"NCS2: {self.verdict}"]
        return [f"OpenVINO {self.openvino_version}, devices: {', '.join(self.devices) or 'none'}",
                "NCS2 (MYRIAD): usable" if self.myriad_usable else f"NCS2: {self.verdict}"]


def myriad_plugin_loads(core) -> bool:
    try:
        return bool(core.get_versions("MYRIAD"))
    except Exception:  # not registered, or its library cannot be loaded
        return False


def openvino_report(core=None) -> RuntimeReport:
    from edge_app.errors import InputError
    from edge_app.runtime import openvino_api

    try:
        Core, _, version = openvino_api()
    except InputError:
        return RuntimeReport(None, [], False, False, NO_OPENVINO)
    core = core or Core()
    devices = list(core.available_devices)
    plugin = myriad_plugin_loads(core)
    usable = plugin and any(d.startswith("MYRIAD") for d in devices)
    verdict = "" if usable else (NO_STICK if plugin else NO_MYRIAD)
    return RuntimeReport(version, devices, plugin, usable, verdict)
