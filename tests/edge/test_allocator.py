"""The daemon caps glibc's malloc arenas itself, unless the environment already chose."""
import os
import subprocess
import sys

from tests.conftest import REPO

PROBE = "from edge_app.allocator import limit_arenas; print(limit_arenas())"


def probe(**env):
    base = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                            env=dict(base, PYTHONPATH=str(REPO), **env))
    return result.stdout.strip()


def test_glibc_accepts_the_arena_limit():
    # mallopt returns 1 only for a parameter and value glibc accepted
    assert probe() == "True"


def test_a_limit_from_the_environment_is_left_alone():
    assert probe(MALLOC_ARENA_MAX="4") == "False"
