"""The emulated Pi test uses the edge suite's real broker and subscriber."""
from tests.edge.conftest import broker, subscriber  # noqa: F401
