"""Does ``rapid``'s stop (``abort_loss``) cost images? Every targeted run (MALT's and the restarts) of ``rapid`` with no
stops (``abort_loss=-inf``) on batch 0 of each model of a study run directory, with that run's batch seeds: per run, the
best targeted DLR loss at APGD's first checkpoint, the losses of its first steps, and whether it went on to fool the
sample; then how many runs a rule would stop, and how many of those would have fooled.

    python benchmarks/rapid_stop_trace.py trace reports/adversarial-rapid runs.jsonl   # about 20 min on 2 cores
    python benchmarks/rapid_stop_trace.py analyse runs.jsonl   # or the committed benchmarks/results/rapid_stop_trace/runs.jsonl.gz
"""

import gzip
import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import torch

import robust_attn as ra
from robust_attn.attacks import create_attack
from robust_attn.attacks import rapid as R
from robust_attn.sweeps.plan import batch_seed

TARGETED = ("malt", "restart", "retry")


def _targeted(member: R.KeyedStarts) -> bool:
    """Whether ``member``'s current run is one of rapid's targeted runs (its start salt says which)."""
    return member.start_salt.split(":")[0] in TARGETED


def trace(run_dir: Path, out_path: Path) -> None:
    torch.set_num_threads(2)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    spec = manifest["spec"]
    cells = [json.loads(p.read_text()) for p in sorted((run_dir / "cells").glob("*.json"))]
    cells = [c for c in cells if c.get("attack") == "rapid"]
    at_checkpoint: dict[int, dict[str, object]] = {}
    after_checkpoint, run_once = R.KeyedStarts._after_checkpoint, R.KeyedStarts.run_once

    def record(self, s, done, result):  # type: ignore[no-untyped-def]
        if done == self.first_interval and _targeted(self):
            for j, i in enumerate(s.ids.tolist()):
                at_checkpoint[i] = {"l22": float(s.loss_best[j]), "steps": [round(float(v), 4) for v in s.loss_steps[:done, j]]}
        return after_checkpoint(self, s, done, result)

    _, x, y = next(iter(ra.load_dataset(spec["dataset"], spec["split"], n=spec["n"]).batches(spec["batch_size"])))
    with open(out_path, "w") as out:
        for cell in cells:
            ref = cell["model"]["ref"]

            def run(self, xs, ys, eps, target, result, fooled, ids, ref=ref):  # type: ignore[no-untyped-def]
                at_checkpoint.clear()
                before = fooled.clone()
                run_once(self, xs, ys, eps, target, result, fooled, ids)
                if _targeted(self):
                    for i in ids.tolist():
                        row = {
                            "model": ref,
                            "eps255": round(eps * 255, 3),
                            "salt": self.start_salt.rsplit(":", 1)[0],
                            "pos": i,
                            "fooled": bool(fooled[i] and not before[i]),
                            "reached_checkpoint": i in at_checkpoint,
                        }
                        out.write(json.dumps({**row, **at_checkpoint.get(i, {})}) + "\n")

            R.KeyedStarts._after_checkpoint, R.KeyedStarts.run_once = record, run
            model = ra.load_model(ref, "cpu", train_missing=False, progress=False)[0]
            attack = create_attack("rapid", model, seed=spec["seed"], channels_last=spec["channels_last"], abort_loss=-math.inf)
            attack.reseed(batch_seed(spec["seed"], SimpleNamespace(config_hash=cell["config_hash"]), 0))
            result = attack.sweep(x, y, cell["eps"], mode=cell["mode"])
            print(ref, "correct without stops (batch 0):", result.correct.sum(1).tolist(), flush=True)
            out.flush()


def analyse(path: Path) -> None:
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    rows = [json.loads(line) for line in text.splitlines()]
    runs = [r for r in rows if r["reached_checkpoint"]]
    print(f"{len(rows)} targeted runs, {len(runs)} reached the first checkpoint, {sum(r['fooled'] for r in runs)} fooled after it")
    for r in sorted((r for r in runs if r["fooled"] and r["l22"] < -0.3), key=lambda r: r["l22"]):
        rise = r["l22"] - max(r["steps"][:11])
        print(
            f"  fooled late: {r['model']} {r['eps255']}/255 {r['salt']}: best loss {r['l22']:.3f} at the checkpoint, rise over steps 12-22 {rise:.3f}"
        )
    for eps in sorted({r["eps255"] for r in runs}):
        at = [r for r in runs if r["eps255"] == eps]
        for th in (-0.6, -0.8, -1.0):
            stop = [r for r in at if r["l22"] < th]
            print(
                f"{eps}/255, abort_loss {th}: stops {len(stop)} of {len(at)} ({len(stop) / len(at):.0%}); {sum(r['fooled'] for r in stop)} of them would have fooled"
            )
    for rise in (math.inf, 0.05, 0.02):
        stop = [r for r in runs if r["l22"] < -0.6 and r["l22"] - max(r["steps"][:11]) < rise]
        print(
            f"abort_loss -0.6 and a rise over steps 12-22 below {rise}: stops {len(stop)} of {len(runs)}; {sum(r['fooled'] for r in stop)} would have fooled"
        )


if __name__ == "__main__":
    if sys.argv[1] == "trace":
        trace(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        analyse(Path(sys.argv[2]))
