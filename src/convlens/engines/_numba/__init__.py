"""The numba kernels of the fast engines (``pip install 'convlens[fast]'``).

Nothing here is imported by ``import convlens``: an engine imports its kernel module
inside the call that needs it, and engines that need numba run only on the numba
backend, so start-up stays fast and the NumPy engines work without numba. Kernels are
serial (``parallel=False``): the GEMMs run in a multi-threaded BLAS, and two thread
pools on the same cores fight each other (docs/performance.md). Compiled code is
cached on disk (``cache=True``).
"""
