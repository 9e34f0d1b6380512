"""Code the benchmark scripts share with the tests, so that neither imports the other: a script
imports ``_common.X`` (its folder, ``benchmarks/``, is on ``sys.path`` when it runs), a test loads
``benchmarks/_common/X.py`` by path. Nothing here is a benchmark, and nothing here is product
code worth shipping in ``robust_attn``: bookkeeping of the benchmarks' own outputs, and the
simulated studies that calibrate the architecture statistics."""
