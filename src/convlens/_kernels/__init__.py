"""Optional numba kernels for data movement (``pip install 'convlens[fast]'``).

Nothing here is imported by ``import convlens``: the library imports a kernel
module only when ``cl.backend.use_numba()`` is true and an op needs it, so
start-up stays fast and the pure NumPy path works without numba. Kernels are
serial (``parallel=False``): the GEMMs run in a multi-threaded BLAS, and two
thread pools on two cores fight (PERFORMANCE.md measured 20-45x slowdowns).
Compiled code is cached on disk (``cache=True``).
"""
