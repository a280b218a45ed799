"""The operations of the lecture, each a forward and its backward side by side.

``from convlens import functional as F`` mirrors ``torch.nn.functional``.
"""

from .activation import *  # noqa: F403
from .conv import *  # noqa: F403
from .linear import *  # noqa: F403
from .loss import *  # noqa: F403
from .normalization import *  # noqa: F403
from .pad import *  # noqa: F403
from .pool import *  # noqa: F403
from .upsample import *  # noqa: F403
