"""graphc: a JIT-compiled computation-graph compiler for training and serving networks on CPUs.

TensorFlow-1 style:

    >>> import graphc as gc
    >>> a = gc.constant([[1.0, 2.0], [3.0, 4.0]])
    >>> b = gc.constant([[5.0, 6.0], [7.0, 8.0]])
    >>> with gc.Session() as sess:
    ...     print(sess.run(gc.add(a, b)))
    [[ 6.  8.]
     [10. 12.]]
"""
__version__ = "0.1.0"

from . import config, dtypes, errors
from .dtypes import as_dtype, bool_, float32, float64, int32, int64
from .errors import (DtypeError, FeedError, FetchError, GraphcError, GraphError, ShapeError,
                     UninitializedVariableError)
from .ir import Graph, Operation, Tensor, TensorSpec, get_default_graph, name_scope, reset_default_graph
from . import ops
from .ops import *  # noqa: F401,F403  (every op's public function)
from .ops.registry import convert_to_tensor
from .autodiff import gradients
from .session import Session
from .ir import register_session_factory as _register_session_factory
_register_session_factory(Session)    # Tensor.eval() without a session (ir does not import session)
from .function import Function, function
from . import math, nn  # noqa: F811  (gc.math, as tf.math)
from . import optimizers, regularizers, schedules
from . import activations, initializers, losses, metrics, callbacks, utils, datasets, layers, models
from . import distributed
from . import train
from .var_scope import AUTO_REUSE, VariableScope, get_variable, get_variable_scope, variable_scope

bool = bool_  # noqa: A001 - TensorFlow spells it gc.bool
from . import compat  # noqa: E402  (gc.compat.v1: TF-1 names; last, it re-exports the above)
