"""Every op of graphc, one record each (see ``registry.OpDef``), grouped by family.

Importing this package registers all ops; the public functions of every family
are re-exported here and from ``graphc``.
"""
from . import registry
from .registry import OPS, OpDef, apply, convert_to_tensor, get_op, register
from . import state, elementwise, reduction, array, indexing, creation, linalg, nn, pooling, normalization, random, rnn, fused  # noqa: E401  (registers)
from . import control_flow  # noqa: F401  (registers scan, while_loop, cond, tuple_get)
from . import distributed  # noqa: F401  (registers allreduce; public as graphc.distributed.allreduce)
from .state import *  # noqa: F401,F403
from .elementwise import *  # noqa: F401,F403
from .reduction import *  # noqa: F401,F403
from .array import *  # noqa: F401,F403
from .indexing import *  # noqa: F401,F403
from .creation import *  # noqa: F401,F403
from .linalg import *  # noqa: F401,F403
from .nn import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .random import *  # noqa: F401,F403
from .rnn import *  # noqa: F401,F403
from .control_flow import *  # noqa: F401,F403

__all__ = (["OPS", "OpDef", "apply", "convert_to_tensor", "get_op", "register"]
           + state.__all__ + elementwise.__all__ + reduction.__all__ + array.__all__ + indexing.__all__ + creation.__all__
           + linalg.__all__ + nn.__all__ + pooling.__all__ + normalization.__all__ + random.__all__ + rnn.__all__
           + control_flow.__all__)
