"""OpenVINO behind one small interface, for both API levels the product meets.

- OpenVINO 2022.3 (the last release with the MYRIAD plugin for the NCS2, on the Pi):
  `from openvino.runtime import Core, AsyncInferQueue`.
- current OpenVINO (CPU elsewhere): `import openvino as ov; ov.Core, ov.AsyncInferQueue`
  (the `openvino.runtime` namespace is gone in 2026 releases).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np

from edge_app.errors import InputError
from edge_app.metadata import ModelInfo

log = logging.getLogger(__name__)


def openvino_api():
    """(Core, AsyncInferQueue, version string) from whichever API this OpenVINO offers."""
    try:
        import openvino as ov
        if hasattr(ov, "Core"):
            return ov.Core, ov.AsyncInferQueue, ov.get_version()
    except ImportError:
        pass
    try:
        from openvino.runtime import AsyncInferQueue, Core, get_version
    except ImportError:
        raise InputError("OpenVINO is not installed", "python environment",
                         "on the Pi: source the 2022.3 runtime's setupvars.sh; elsewhere: "
                         "pip install openvino") from None
    return Core, AsyncInferQueue, get_version()


def blob_path(info: ModelInfo, device: str) -> Path:
    """Where a precompiled blob of this exact IR for this device lives: beside the metadata,
    named with the IR's hash so a blob of an older export is never picked up."""
    digest = info.raw["ir"].get("bin_sha256", "")[:12]
    return info.path.with_name(f"{info.xml.stem}.{device.split('.')[0]}.{digest}.blob")


class Engine:
    """A compiled model on one device; infers u8 NHWC tensors into the raw region output."""

    def __init__(self, info: ModelInfo, device: str = "CPU", core=None,
                 hint: Optional[str] = None):
        """hint: OpenVINO PERFORMANCE_HINT, "LATENCY" or "THROUGHPUT" (several requests in
        flight); None keeps the device's default."""
        Core, self._AsyncInferQueue, self.version = openvino_api()
        self.core = core or Core()
        self.info = info
        available = self.core.available_devices
        if device.split(".")[0] not in {d.split(".")[0] for d in available} and device != "AUTO":
            raise InputError(f"OpenVINO device '{device}' is not available here (found: "
                             f"{', '.join(available) or 'none'})", "device",
                             "plug in the NCS2 and check the udev rules, or choose CPU")
        config = {"PERFORMANCE_HINT": hint} if hint else {}
        self.compiled = None
        self.source = "ir"
        blob = blob_path(info, device)
        if blob.exists():
            try:
                with open(blob, "rb") as f:
                    self.compiled = self.core.import_model(f.read(), device, config)
                self.source = f"blob {blob.name}"
            except RuntimeError as exc:
                log.warning("precompiled blob %s was refused (%s); compiling the IR instead", blob, exc)
        if self.compiled is None:
            model = self.core.read_model(str(info.xml), str(info.bin))
            self.compiled = self.core.compile_model(model, device, config)
        self.device = device
        self._request = self.compiled.create_infer_request()

    def export_blob(self) -> Path:
        """Save the compiled model beside the metadata (see blob_path)."""
        from edge_app.atomic import write_bytes

        target = blob_path(self.info, self.device)
        data = self.compiled.export_model()  # bytes on 2022.3, a BytesIO on current releases
        write_bytes(target, data.getvalue() if hasattr(data, "getvalue") else data)
        return target

    def optimal_requests(self) -> int:
        try:
            return int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        except Exception:  # not every plugin reports it
            return 1

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        """Synchronous inference of one (1, H, W, 3) u8 tensor; returns a copy of the output."""
        self._request.infer({0: tensor})
        return self._request.get_output_tensor(0).data.copy()

    def async_queue(self, jobs: Optional[int] = None):
        return self._AsyncInferQueue(self.compiled, jobs or self.optimal_requests())
