# Stub of the compiled module nnlib._kernels.dense for type checkers: its entry points'
# names and parameters, checked against the built module by tests/test_typing.py. The
# values are Any: the Python wrappers validate them and type what the public API returns.
from typing import Any

def dense_backward(X: Any, W: Any, H: Any, grad_H: Any, dZ: Any, dX: Any, dW: Any, db: Any,
                   work: Any, kind: Any, param: Any) -> Any: ...
def dense_forward(X: Any, W: Any, b: Any, H: Any, kind: Any, param: Any,
                  n_threads: Any) -> Any: ...
def __getattr__(name: str) -> Any: ...
