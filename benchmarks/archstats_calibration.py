"""Calibration of the architecture-level statistics (robust_attn.archstats) on simulated studies
with known truth: per-sample outcomes from logit(p) = mu_arch + seed effect + sample effect, the
two architectures seeing the same images (sample effects correlated 0.6).

    python benchmarks/archstats_calibration.py            # 2,000 studies per setting

Prints, per seed-variance setting and number of seeds, the coverage of the 95% interval for the
difference (true difference 0 and about 4 points), the false-positive rate of the test at 5%, and
the coverage of the single-architecture interval. The simulation is
benchmarks/_common/simulated_studies.py, which tests/test_archstats.py runs on two rows.
"""

from __future__ import annotations

import argparse
import time

from _common.simulated_studies import simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("-n", type=int, default=300, help="test images per study")
    args = parser.parse_args()
    t0 = time.perf_counter()
    print(f"{args.reps} simulated studies per row, {args.n} images, sample effects sd 1.5 (logit), accuracy about 0.7\n")
    print(
        "| seed sd (logit) | seeds | coverage, difference 0 | false positives at 5% | coverage, difference ~4 points | coverage, one architecture |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for tau in (0.0, 0.05, 0.15, 0.3, 0.6, 1.0):
        for seeds in (3, 5):
            null_cov, fp, mean_cov = simulate(tau, 1.0, 1.0, args.reps, seeds=seeds, n=args.n, seed=11)
            alt_cov, _, _ = simulate(tau, 1.25, 1.0, args.reps, seeds=seeds, n=args.n, seed=12)
            print(f"| {tau} | {seeds} | {null_cov:.1%} | {fp:.1%} | {alt_cov:.1%} | {mean_cov:.1%} |", flush=True)
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
