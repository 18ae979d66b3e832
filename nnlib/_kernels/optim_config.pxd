# cython: language_level=3
"""The one place a Python optimizer config becomes an ``OptimConfig`` struct.

``nnlib.optim.Optimizer.config()`` returns a dict with exactly the struct's fields
(``config_fields()``, in struct order). Both compiled users of the
optimizer rules, the standalone step (``optim.pyx``) and the training epoch
(``train.pyx``), read it through ``config_from_dict``, so a field added to the struct is
read in one place.
"""
from libc.string cimport memset
from nnlib._kernels.codes cimport N_OPTIM_KINDS
from nnlib._kernels.optim_rules cimport OptimConfig

cdef inline tuple config_fields():
    """The struct's field names, in struct order (Cython converts a struct to a dict)."""
    cdef OptimConfig blank
    memset(&blank, 0, sizeof(blank))
    return tuple(<dict>blank)


cdef inline OptimConfig config_from_dict(dict d) except *:
    cdef OptimConfig cfg
    try:
        cfg = d
    except ValueError:
        # the missing fields named only here: listing the struct's fields costs about
        # as much as the conversion, on every optimizer step
        missing = [f for f in config_fields() if f not in d]
        if missing:
            raise ValueError(f"optimizer config lacks {missing}") from None
        raise
    if not 0 <= cfg.kind < N_OPTIM_KINDS:
        raise ValueError(f"unknown optimizer kind {cfg.kind}")
    return cfg
