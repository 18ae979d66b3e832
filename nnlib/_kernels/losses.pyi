# Stub of the compiled module nnlib._kernels.losses for type checkers: its entry points'
# names and parameters, checked against the built module by tests/test_typing.py. The
# values are Any: the Python wrappers validate them and type what the public API returns.
from typing import Any

STACK_ROWS: int

def loss_grad(kind: Any, z: Any, y_target: Any, y_label: Any, scale: Any, margin: Any, dz: Any,
              chunk_loss: Any, work: Any, n_threads: Any, weight: Any = ...) -> Any: ...
def n_chunks(n: Any) -> Any: ...
def __getattr__(name: str) -> Any: ...
