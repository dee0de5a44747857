"""FakeAdapter: a test double for the inference runtime (edge_app.runtime.InferenceAdapter).

It stands in for OpenVINO only so the pipeline's back-pressure, ordering, shutdown and error
paths can be driven deterministically; everything around it (capture, decode, sinks, the
adapter base class's slot bookkeeping) is the real code. Each submission completes on its own
thread after `delays[seq % len(delays)]` seconds, so results come back out of order.
"""
from __future__ import annotations

import threading
import time

import numpy as np

from edge_app.runtime import InferenceAdapter


class FakeAdapter(InferenceAdapter):
    runtime = "test double"
    device = "FAKE"
    version = "0"
    source = "none"

    def __init__(self, output_shape, delays=(0.0,), fail_at=(), optimal=3):
        super().__init__()
        self.output_shape = tuple(output_shape)
        self.delays = delays
        self.fail_at = set(fail_at)  # submission numbers whose callback carries an error
        self.optimal = optimal
        self.submissions = 0
        self.max_in_flight = 0

    def optimal_requests(self) -> int:
        return self.optimal

    def infer(self, tensor):
        return np.zeros(self.output_shape, np.float32)

    def _open(self, requests: int) -> int:
        return requests

    def _start(self, tensor, userdata) -> None:
        seq = self.submissions
        self.submissions += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        threading.Thread(target=self._complete, args=(seq, userdata), daemon=True).start()

    def _complete(self, seq, userdata) -> None:
        time.sleep(self.delays[seq % len(self.delays)])
        if seq in self.fail_at:
            self._finish(userdata, None, RuntimeError(f"device error on request {seq}"))
        else:
            self._finish(userdata, np.zeros(self.output_shape, np.float32), None)
