"""How the optional compiled part of edge_app is built: one home for setup.py (training box, CI)
and deploy/pi/setup_edge.py (the Pi). Read with runpy, so building imports nothing of edge_app.

-ffp-contract=off: no fused multiply-add, so every float product and sum is rounded as darknet's
C code rounds it (the results are compared bit for bit in tests/edge/test_preprocess.py).
optional: a machine without a C compiler installs edge_app all the same (numpy fallback)."""
EXTENSION = dict(
    name="edge_app.native._dkresize",
    sources=["edge_app/native/dkresize.c", "edge_app/native/dknms.c"],
    depends=["edge_app/native/dkresize_kernels.h"],
    extra_compile_args=["-O3", "-ffp-contract=off", "-fno-math-errno", "-std=c99"],
    optional=True,
)
