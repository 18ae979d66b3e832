# Stub of the compiled module nnlib._kernels.aligned for type checkers: its entry points'
# names and parameters, checked against the built module by tests/test_typing.py.
from typing import Any

CACHE_LINE: int

def empty_like(x: Any) -> Any: ...
def __getattr__(name: str) -> Any: ...
