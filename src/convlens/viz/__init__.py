"""See inside a CNN: pictures of convolutions, kernels, feature maps and training.

Every function returns a :class:`matplotlib.figure.Figure` and takes ``save=path``
to also write it as a PNG (atomically: a temporary file, then ``os.replace``).
matplotlib is an optional extra (``pip install 'convlens[viz]'``), imported only
when a function here is called.

The figures are built with ``matplotlib.figure.Figure`` and drawn by the Agg
renderer, never through ``pyplot``: they work without a display, do not pile up
in pyplot's global figure list and are not shown twice in Jupyter. In a notebook
(``%matplotlib inline``) the returned figure displays itself; in a script use
``save=`` or ``fig.savefig``.

By topic:

* ``convolution``: :func:`convolution_steps`, :func:`convolution_animation`;
* ``network``: :func:`kernels`, :func:`feature_maps`, :func:`visualize_checkpoint`;
* ``training``: :func:`training_curves`, :func:`confusion_matrix`, :func:`most_confused`;
* ``filters``: :func:`filters_grid`;
* ``tasks``: :func:`waveform`, :func:`filters_1d`, :func:`feature_maps_1d`,
  :func:`segmentation_examples`, :func:`iou_bars` (sound and segmentation).

>>> import convlens as cl
>>> fig = cl.viz.convolution_steps([[1, 1, 2], [2, 2, 1], [1, 5, 0]],
...                                [[2, 3, 0], [0, 1, 3], [3, 0, 3]])  # doctest: +SKIP
"""

from .convolution import convolution_animation, convolution_steps
from .filters import filters_grid
from .network import feature_maps, kernels, visualize_checkpoint
from .tasks import feature_maps_1d, filters_1d, iou_bars, segmentation_examples, waveform
from .training import confusion_matrix, most_confused, training_curves

__all__ = [
    "confusion_matrix",
    "convolution_animation",
    "convolution_steps",
    "feature_maps",
    "feature_maps_1d",
    "filters_1d",
    "filters_grid",
    "iou_bars",
    "kernels",
    "most_confused",
    "segmentation_examples",
    "training_curves",
    "visualize_checkpoint",
    "waveform",
]
