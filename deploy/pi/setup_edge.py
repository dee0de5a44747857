"""setup.py for the device: `edge_app` only (no model_tools, matplotlib, tqdm).

install.sh copies this beside a copy of edge_app/ and the repository's setup.cfg (renamed
repo-setup.cfg, so setuptools does not apply it whole) in a temporary folder and installs from
there; the user's clone gets no build/ or *.egg-info. Name, version, the edge-app entry point
and the runtime requirements are read from setup.cfg, their one home. numpy is left out: on the
Pi it is Debian's python3-numpy, which python3-opencv and OpenVINO are built against (pip
would otherwise try to replace it with a numpy that has no armv7l wheel).
Plain setuptools, no pyproject: Bullseye's pip 20.3.4 installs it with --no-build-isolation.
The compiled resize (edge_app/native, optional) is built when the Pi has a C compiler (gcc);
without one the install goes on and edge_app uses its numpy version (`edge-app check` says which).
"""
import configparser
import runpy
from pathlib import Path

from setuptools import Extension, setup

HERE = Path(__file__).resolve().parent
cfg = configparser.ConfigParser()
cfg.read(HERE / "repo-setup.cfg", encoding="utf-8")


def lines(section: str, key: str):
    return [line.strip() for line in cfg.get(section, key).splitlines() if line.strip()]


requires = [r for r in lines("options", "install_requires")
            if not r.replace(" ", "").lower().startswith("numpy")]
scripts = [s for s in lines("options.entry_points", "console_scripts") if s.startswith("edge-app")]

setup(
    name="edge-app",
    version=cfg.get("metadata", "version"),
    description="edge-vision device daemon (edge_app only)",
    packages=["edge_app", "edge_app.schemas", "edge_app.native"],
    ext_modules=[Extension(**runpy.run_path(str(HERE / "edge_app/native/build_spec.py"))["EXTENSION"])],
    package_data={"edge_app": ["schemas/*.json"]},
    python_requires=">=3.9",
    install_requires=requires,
    entry_points={"console_scripts": scripts},
)
