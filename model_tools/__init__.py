"""The training box's tools (`model-tools`)."""
import os

# OpenBLAS, twice in this process (numpy's and the copy inside the OpenCV wheel), starts a worker
# per core when it loads, and each spins for 2^28 cycles (~0.1 s) waiting for a first job that
# never comes: nothing here multiplies matrices large enough to hand out. 2^4 cycles instead
# (the variable's floor): an evaluation of 200 images spent 0.2 of its 1.1 CPU-seconds in those
# spins, on the cores its reading and inference need. Set before numpy or cv2 is loaded (they
# read it once); a value the user set is kept. Results are unchanged: only idle waiting is.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
