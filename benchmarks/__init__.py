"""Side-by-side speed benchmarks: convlens against PyTorch on this CPU (issue 4).

Run from the repository root, with the two OpenBLAS variables that this machine sets
(and that slow NumPy's BLAS) removed for the benchmark process only::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks [--quick] \
        [--only NAME] [--json out.json] [--md docs/benchmarks.md]

Every workload runs both frameworks in the same process, interleaved chunk by chunk,
each chunk preceded by a short sleep and a few untimed warm-up iterations; the
reported time is the median over repetitions and the headline number is the ratio
convlens / PyTorch (below 1 means convlens is faster). Peak memory is measured in a
fresh subprocess per framework and workload. See ``docs/benchmarks.md`` for the
method and the latest results.

Modules:
    _env       machine, library versions, BLAS kernel, environment variables
    _timing    interleaved, warmed-up, median-of-repetitions timing
    _memory    per-workload peak resident memory in a fresh subprocess
    ops        conv2d and pooling workloads
    lenet      LeNet-5 training, inference; weight copying between frameworks
    startup    import / CLI start-up time in fresh subprocesses
    report     console table, JSON and Markdown
"""

THREADS = 2  # both frameworks: NumPy's BLAS via threadpoolctl, torch.set_num_threads
