"""The optional compiled parts (edge_app/native, model_tools/native); everything else is in setup.cfg."""
import runpy

from setuptools import Extension, setup

setup(ext_modules=[Extension(**runpy.run_path(spec)["EXTENSION"])
                   for spec in ("edge_app/native/build_spec.py", "model_tools/native/build_spec.py")])
