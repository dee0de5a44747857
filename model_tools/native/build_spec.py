"""How the optional compiled part of model_tools is built (read by setup.py with runpy, so
building imports nothing of model_tools). optional: a machine without a C compiler installs all
the same, and the log parser runs its regexes line by line instead (same results, slower)."""
EXTENSION = dict(
    name="model_tools.native._logscan",
    sources=["model_tools/native/logscan.c"],
    extra_compile_args=["-O2", "-std=c99", "-ffp-contract=off"],  # sums rounded as Python rounds them
    optional=True,
)
