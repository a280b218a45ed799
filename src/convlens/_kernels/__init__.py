"""Optional numba kernels (``pip install 'convlens[fast]'``): col2im, and the direct
convolution (with its fused ReLU + 2x2 max pooling) for few input channels.

Nothing here is imported by ``import convlens``: the library imports a kernel
module only when ``cl.backend.use_numba()`` is true and an op needs it, so
start-up stays fast and the pure NumPy path works without numba. Kernels are
serial (``parallel=False``): the GEMMs run in a multi-threaded BLAS, and two
thread pools on two cores fight (PERFORMANCE.md measured 20-45x slowdowns;
splitting the direct convolution's batch over two Python threads measured no
faster here either). Compiled code is cached on disk (``cache=True``).
"""
