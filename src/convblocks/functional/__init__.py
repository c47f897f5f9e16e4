"""The engine: 2-D convolution and pooling, forward and backward.

Every forward returns ``(y, cache)`` and every backward takes ``(dy, cache)``.
Options are keyword-only. NHWC activations use HWIO weights ``(kh, kw, C_in/groups,
C_out)`` as in Keras and the exercise; NCHW activations use OIHW weights ``(C_out,
C_in/groups, kh, kw)`` as in PyTorch. See ``docs/engine.md`` for every option and the
errors each invalid combination raises.
"""

from .buffers import clear_buffer_pool, get_buffer_pool_limit, set_buffer_pool_limit
from .conv import (
    conv2d,
    conv2d_backward,
    conv2d_cache,
    conv_transpose2d,
    conv_transpose2d_backward,
)
from .pool import (
    avg_pool2d,
    avg_pool2d_backward,
    global_avg_pool2d,
    global_avg_pool2d_backward,
    global_max_pool2d,
    global_max_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
)
from .threads import get_num_threads, set_num_threads
from .workspace import get_workspace_limit, set_workspace_limit

__all__ = [
    "conv2d", "conv2d_backward", "conv2d_cache", "conv_transpose2d", "conv_transpose2d_backward",
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "global_avg_pool2d", "global_avg_pool2d_backward",
    "global_max_pool2d", "global_max_pool2d_backward",
    "set_workspace_limit", "get_workspace_limit", "set_num_threads", "get_num_threads",
    "set_buffer_pool_limit", "get_buffer_pool_limit", "clear_buffer_pool",
]
