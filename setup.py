"""The optional compiled part of edge_app (edge_app/native); everything else is in setup.cfg."""
import runpy

from setuptools import Extension, setup

setup(ext_modules=[Extension(**runpy.run_path("edge_app/native/build_spec.py")["EXTENSION"])])
