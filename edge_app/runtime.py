"""The inference runtime behind one small adapter interface (the style of OpenVINO model_api's
`InferenceAdapter`), so the pipeline can be driven and tested without the runtime.

The interface (`InferenceAdapter`):
- `infer(tensor)`: synchronous inference of one tensor (detect, evaluate, benchmarks);
- `open(requests, callback)`: get ready for asynchronous use with at most `requests` requests
  in flight; `callback(userdata, output, error)` is called once per submission, from the
  runtime's thread, with the raw output (a private copy) or the error that replaced it;
- `wait_for_free_slot(timeout)`, `submit(tensor, userdata)`, `drain(timeout)`;
- `optimal_requests()`, and `device`, `runtime`, `version`, `source` for reports.

The slot bookkeeping lives in the base class, so every adapter (and the tests' stand-in) frees
a slot only after its callback has returned. The one adapter here is OpenVINO, for both API
levels the product meets — that split lives only in `openvino_api()`:
- OpenVINO 2022.3 (the last release with the MYRIAD plugin for the NCS2, on the Pi):
  `from openvino.runtime import Core, AsyncInferQueue`.
- current OpenVINO (CPU elsewhere): `import openvino as ov; ov.Core, ov.AsyncInferQueue`
  (the `openvino.runtime` namespace is gone in 2026 releases).
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, Optional, Tuple

import numpy as np

from edge_app.errors import InputError
from edge_app.filepages import page_out
from edge_app.metadata import ModelInfo, check_ir
from edge_app.widen import widened_weights

log = logging.getLogger(__name__)

# OpenVINO's CPU plugin before 2024.2 cloned every constant into the compiled model's weights
# cache whenever it ran more than one stream (openvino pull request 24386 stopped that on
# one-socket machines): THROUGHPUT's stream per core then holds the weights a second time in
# anonymous memory, +60 MiB for a 416 yolov2-tiny-voc (benchmarks/bench_rss.py)
CPU_STREAMS_SHARE_WEIGHTS = (2024, 2)
# model.hint "auto" on such a plugin: one stream, and this many requests so the host's work on
# one frame overlaps the inference of the next
ONE_STREAM_REQUESTS = 2

# callback(userdata, output, error): exactly one of output / error is None
ResultCallback = Callable[[Any, Optional[np.ndarray], Optional[BaseException]], None]


class InferenceAdapter:
    """Base of every runtime adapter: the asynchronous slot bookkeeping.

    Subclasses implement `infer`, `optimal_requests`, `_open(requests) -> int` (the count they
    really made), `_start(tensor, userdata)` and, from their completion thread, call
    `_finish(userdata, output, error)`.
    """

    runtime = "none"
    device = ""
    version = ""
    source = ""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._in_flight = 0
        self._requests = 0
        self._callback: Optional[ResultCallback] = None
        self.callback_error: Optional[BaseException] = None  # a callback that raised: a bug
        self.callback_cpu = 0.0  # CPU seconds of completion work on the runtime's threads

    # -- to implement -----------------------------------------------------------------------

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def optimal_requests(self) -> int:
        return 1

    def _open(self, requests: int) -> int:
        raise NotImplementedError

    def _start(self, tensor: np.ndarray, userdata: Any) -> None:
        raise NotImplementedError

    # -- the asynchronous interface -----------------------------------------------------------

    def open(self, requests: int, callback: ResultCallback) -> int:
        """Prepare `requests` (>= 1) asynchronous requests; returns how many there are."""
        if requests < 1:
            raise ValueError(f"requests must be >= 1, not {requests}")
        self._callback = callback
        self._requests = self._open(requests)
        return self._requests

    @property
    def requests(self) -> int:
        return self._requests

    @property
    def in_flight(self) -> int:
        with self._cond:
            return self._in_flight

    def wait_for_free_slot(self, timeout: Optional[float] = None) -> bool:
        """True once a request is free (the next submit will not block); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._in_flight < self._requests, timeout)

    def submit(self, tensor: np.ndarray, userdata: Any) -> None:
        """Start one inference; the callback receives `userdata` with its result. Call it only
        after wait_for_free_slot() said True (a full adapter is a caller's bug)."""
        with self._cond:
            if self._callback is None:
                raise RuntimeError("submit() before open()")
            if self._in_flight >= self._requests:
                raise RuntimeError("submit() with every request busy; wait_for_free_slot() first")
            self._in_flight += 1
        try:
            self._start(tensor, userdata)
        except BaseException:
            self._release()
            raise

    def drain(self, timeout: Optional[float] = None) -> bool:
        """Wait until every submitted request has called back; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._in_flight == 0, timeout)

    def _finish(self, userdata: Any, output: Optional[np.ndarray],
                error: Optional[BaseException], cpu_start: Optional[float] = None) -> None:
        """Hand one result to the callback and free its slot. cpu_start: thread_time() when the
        completion work began on this thread (default: now), for callback_cpu."""
        if cpu_start is None:
            cpu_start = time.thread_time()
        try:
            self._callback(userdata, output, error)
        except BaseException as exc:  # kept for the owner to raise; never lost in a C++ thread
            log.error("inference result callback raised %r", exc)
            if self.callback_error is None:
                self.callback_error = exc
        finally:
            self._release(time.thread_time() - cpu_start)

    def _release(self, cpu: float = 0.0) -> None:
        with self._cond:
            self._in_flight -= 1
            self.callback_cpu += cpu
            self._cond.notify_all()

    def describe(self) -> str:
        return f"{self.device}, {self.runtime} {self.version}"


def import_openvino():
    """`import openvino`, without the model conversion API that OpenVINO 2023.1 on imports with
    it (openvino.tools.ovc, and with that its telemetry, urllib and http.client): 0.3 s of every
    start, for `convert_model`, which nothing here calls (graphs are built from opsets). OpenVINO's
    __init__ goes on without it on an ImportError; None in sys.modules is how Python says absent."""
    sys.modules.setdefault("openvino.tools.ovc", None)
    import openvino

    return openvino


def openvino_api():
    """(Core, AsyncInferQueue, version string) from whichever API this OpenVINO offers."""
    try:
        ov = import_openvino()
        if hasattr(ov, "Core"):
            return ov.Core, ov.AsyncInferQueue, ov.get_version()
    except ImportError:
        pass
    try:
        from openvino.runtime import AsyncInferQueue, Core, get_version
    except ImportError:
        raise InputError("OpenVINO is not installed", "python environment",
                         "on the Pi: install the 2022.1 Raspbian runtime (docs/ncs2-runtimes.md) "
                         "and start edge-app through /opt/edge-app/run.sh, or set model.engine "
                         "= \"opencv\"; elsewhere: pip install openvino") from None
    return Core, AsyncInferQueue, get_version()


def release(version: str) -> tuple:
    """(year, release) of an OpenVINO version string: "2022.3.1-9227-..." -> (2022, 3)."""
    parts = version.split("-")[0].split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return (0, 0)


def performance_hint(hint: Optional[str], device: str, version: str) -> Optional[str]:
    """OpenVINO's PERFORMANCE_HINT for model.hint ("auto", "throughput" or "latency"; None keeps
    the device's default). "auto" is THROUGHPUT, except on a CPU plugin whose streams each hold
    the weights (CPU_STREAMS_SHARE_WEIGHTS): there LATENCY, one stream on every core."""
    if hint is None or hint.lower() != "auto":
        return hint.upper() if hint else None
    if device.split(".")[0] == "CPU" and release(version) < CPU_STREAMS_SHARE_WEIGHTS:
        return "LATENCY"
    return "THROUGHPUT"


def blob_path(info: ModelInfo, device: str) -> Path:
    """Where a precompiled blob of this exact IR for this device lives: beside the metadata,
    named with the IR's hash so a blob of an older export is never picked up."""
    digest = info.raw["ir"].get("bin_sha256", "")[:12]
    return info.path.with_name(f"{info.xml.stem}.{device.split('.')[0]}.{digest}.blob")


def device_problem(core, device: str) -> str:
    """Why OpenVINO cannot use `device` ("CPU", "MYRIAD", "MYRIAD.1.2-ma2480", ...) here, or ""
    if it can. Asks that device's plugin alone: `core.available_devices` would load every
    registered plugin (GPU, NPU, ...), and a loaded plugin stays in the process: 26 MiB of the
    daemon's RSS on current OpenVINO, 14 MiB on 2022.3, for devices it never uses."""
    if device == "AUTO":
        return ""
    kind = device.split(".")[0]
    try:
        found = core.get_property(kind, "AVAILABLE_DEVICES")
    except RuntimeError as exc:  # not registered, or its library does not load
        return f"no usable {kind} plugin: {str(exc).strip().splitlines()[-1][:200]}"
    return "" if found else f"the {kind} plugin finds no device"


def _static_shape(ports, what: str, info: ModelInfo) -> list:
    """The one static shape of a model's inputs or outputs; InputError for anything else."""
    if len(ports) != 1 or ports[0].get_partial_shape().is_dynamic:
        raise InputError(f"the model has {len(ports)} {what}s or a dynamic {what} shape; an export has "
                         f"one, static", str(info.xml), "export the model again with `model-tools export`")
    return list(ports[0].get_partial_shape().to_shape())


class OpenVINOAdapter(InferenceAdapter):
    """A compiled model on one OpenVINO device; infers u8 NHWC tensors into the raw region output."""

    runtime = "OpenVINO"

    def __init__(self, info: ModelInfo, device: str = "CPU", core=None,
                 hint: Optional[str] = None, page_out_after_compile: bool = True):
        """hint: model.hint, "auto", "throughput" (several requests in flight) or "latency"
        (see performance_hint); None keeps the device's default. page_out_after_compile: hand
        back the file pages compiling read (filepages.py), for a long-lived process that keeps
        one model; one that compiles model after model (evaluation) would only read them again."""
        super().__init__()
        Core, self._AsyncInferQueue, self.version = openvino_api()
        self.core = core or Core()
        self.info = info
        missing = device_problem(self.core, device)
        if missing:
            raise InputError(f"OpenVINO device '{device}' is not available here ({missing})", "device",
                             "plug in the NCS2 and check the udev rules, or choose CPU")
        self.hint = performance_hint(hint, device, self.version)
        # "auto" chose one stream to keep the weights once: still overlap host work and inference
        one_stream = (hint or "").lower() == "auto" and self.hint == "LATENCY"
        self._min_requests = ONE_STREAM_REQUESTS if one_stream else 1
        config: Dict[str, str] = {"PERFORMANCE_HINT": self.hint} if self.hint else {}
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
            try:
                model = self._read_model(info, device)
            except RuntimeError as exc:  # OpenVINO's only error type for a model it cannot parse
                raise InputError(f"OpenVINO cannot read the model: {str(exc).strip().splitlines()[0][:300]}",
                                 str(info.xml), "export the model again with `model-tools export`") from None
            check_ir(info, _static_shape(model.inputs, "input", info), _static_shape(model.outputs, "output", info))
            self.compiled = self.core.compile_model(model, device, config)
        if page_out_after_compile:
            # what compiling read once: current OpenVINO's mapping of the .bin, the code of its
            # transformations and of every library's start-up (filepages.py)
            log.debug("%.0f MiB of read-only file mappings handed back to the kernel", page_out() / 2 ** 20)
        self.device = device
        self._request = None  # infer()'s, made on first use: the asynchronous path needs none
        self._queue = None

    def _read_model(self, info: ModelInfo, device: str):
        """The IR as OpenVINO's model. OpenVINO 2022.x's CPU plugin keeps for the compiled model's
        life an FP32 copy of an FP16 IR's weights in its own memory: it gets them widened
        instead, mapped from a file it then shares (widen.py), 60 MiB for a 416 yolov2-tiny-voc."""
        self._weights = None
        if device == "CPU" and info.precision == "FP16" and self.version.startswith("2022."):
            widened = widened_weights(info)
            if widened is not None:
                from openvino.runtime import Tensor  # 2022.x: the namespace is there

                xml, path = widened
                # the model's constants point into this mapping: it lives as long as the adapter
                self._weights = np.memmap(path, np.uint8, "r")
                return self.core.read_model(model=xml, weights=Tensor(self._weights, shared_memory=True))
        return self.core.read_model(str(info.xml), str(info.bin))

    def export_blob(self) -> Path:
        """Save the compiled model beside the metadata (see blob_path)."""
        from edge_app.atomic import write_bytes

        target = blob_path(self.info, self.device)
        data = self.compiled.export_model()  # bytes on 2022.3, a BytesIO on current releases
        write_bytes(target, data.getvalue() if hasattr(data, "getvalue") else data)
        return target

    def optimal_requests(self) -> int:
        try:
            return max(self._min_requests, int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        except Exception:  # not every plugin reports it
            return self._min_requests

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        """Synchronous inference of one (1, H, W, 3) u8 tensor; returns a copy of the output."""
        if self._request is None:
            self._request = self.compiled.create_infer_request()
        self._request.infer({0: tensor})
        return self._request.get_output_tensor(0).data.copy()

    def infer_all(self, items: Iterable[Tuple[np.ndarray, Any]], requests: int) -> Iterator[Tuple[Any, np.ndarray]]:
        """(userdata, output copy) of a stream of independent (tensor, userdata) inputs, in their
        order, with `requests` inferences in flight: for a pass over a data set (evaluation), not
        a camera. The requests are waited for in turn on the calling thread, so no callback needs
        Python's lock on the runtime's threads: 15% less CPU per image than the callback queue."""
        idle = deque(self.compiled.create_infer_request() for _ in range(requests))
        running: Deque = deque()  # (request, userdata), oldest first

        def finish_oldest():
            request, userdata = running.popleft()
            request.wait()
            idle.append(request)
            return userdata, request.get_output_tensor(0).data.copy()

        try:
            for tensor, userdata in items:
                if not idle:
                    yield finish_oldest()
                request = idle.popleft()
                request.start_async({0: tensor})
                running.append((request, userdata))
            while running:
                yield finish_oldest()
        finally:
            for request, _ in running:  # stopped early: no request outlives its input
                request.wait()

    def _open(self, requests: int) -> int:
        self._queue = self._AsyncInferQueue(self.compiled, requests)
        self._queue.set_callback(self._on_done)
        return len(self._queue)

    def _on_done(self, request, userdata) -> None:
        # runs in OpenVINO's thread; the output buffer is reused by the next inference, so copy
        cpu_start = time.thread_time()
        try:
            output, error = request.get_output_tensor(0).data.copy(), None
        except BaseException as exc:
            output, error = None, exc
        self._finish(userdata, output, error, cpu_start)

    def _start(self, tensor: np.ndarray, userdata: Any) -> None:
        self._queue.start_async({0: tensor}, userdata)

    def drain(self, timeout: Optional[float] = None) -> bool:
        done = super().drain(timeout)
        if done and self._queue is not None:
            self._queue.wait_all()  # the queue marks a request idle just after its callback
        return done


ENGINES = ("openvino", "opencv")


def open_adapter(info: ModelInfo, device: str = "CPU", hint: Optional[str] = None,
                 engine: str = "openvino") -> InferenceAdapter:
    """The adapter for this model on this device: the one place that picks the runtime.
    engine "opencv": OpenCV DNN on the CPU from the bundle's darknet files, no OpenVINO
    (edge_app/opencv_dnn.py); `device` and `hint` do not apply."""
    if engine == "opencv":
        from edge_app.opencv_dnn import OpenCVAdapter
        return OpenCVAdapter(info)
    return OpenVINOAdapter(info, device, hint=hint)
