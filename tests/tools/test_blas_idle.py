"""model_tools keeps OpenBLAS's idle workers (numpy's, and the OpenCV wheel's own copy) from
spinning on the cores its evaluation needs, and keeps a value the user chose."""
import os
import subprocess
import sys

from tests.conftest import REPO

# After importing model_tools, numpy and cv2 as the command line does, wait a little and report
# the state of every thread but this one (R: running or runnable, S: asleep) and the variable.
PROBE = """
import os, time
import model_tools, numpy, cv2
time.sleep(0.03)
main = str(os.getpid())
states = [open(f"/proc/self/task/{t}/stat").read().rsplit(")", 1)[1].split()[0]
          for t in os.listdir("/proc/self/task") if t != main]
print(os.environ.get("OPENBLAS_THREAD_TIMEOUT"), "".join(states))
"""


def probe(**env):
    clean = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    result = subprocess.run([sys.executable, "-c", PROBE], env=dict(clean, PYTHONPATH=str(REPO), **env),
                            capture_output=True, text=True, timeout=120, check=True)
    value, _, states = result.stdout.strip().partition(" ")
    return value, states


def test_openblas_workers_sleep_once_loaded():
    value, states = probe()
    assert value == "4"
    if os.cpu_count() == 1:  # OpenBLAS starts no worker on one core: nothing to show
        return
    assert states, "numpy's OpenBLAS started no worker thread"
    # the default 2^28-cycle spin (~0.1 s) would still be running 30 ms after the imports
    assert set(states) == {"S"}, states


def test_a_value_the_user_set_is_kept():
    value, states = probe(OPENBLAS_THREAD_TIMEOUT="28")
    assert value == "28"
    if os.cpu_count() > 1:  # the control: with the default spin the workers are still busy
        assert "R" in states, states
