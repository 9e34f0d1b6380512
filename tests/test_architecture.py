"""The package's shape: no import cycle between its modules, no attack-name list or
architecture-string parsing outside the registries, and attacks that leave the caller's model as
they found it."""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path

import torch
import torch.nn as nn

import robust_attn as ra

PACKAGE = Path(ra.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Every robust_attn module ``path`` imports, at module level, inside functions or under
    TYPE_CHECKING alike (an import inside a function is still a dependency)."""
    out = set()
    this = _module_name(path)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module if node.level == 0 else ".".join([*this.split(".")[: -node.level], node.module])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in modules else base)
    return {m for m in out if m in modules and m != this}


def test_no_import_cycles() -> None:
    """A walk of the package's imports (AST, not runtime) finds no cycle. A package's __init__
    re-exporting its submodules is not a cycle with them: edges go to the exact module named."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: _imports(p, set(files)) for m, p in files.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if n.startswith(m + "."):
                continue  # a package importing its own submodules (re-exports)
            if state.get(n) == 1:
                return [*stack[stack.index(n) :], n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            cycle = visit(m)
            assert cycle is None, " -> ".join(cycle)


def test_no_name_lists_outside_the_registries() -> None:
    """Capabilities are attributes: no module compares an attack's or architecture's name with a
    literal, or parses an architecture string, to decide what to do."""
    patterns = [
        r"\.name\s*(==|!=|in)\s*[\(\[\"']",  # attack.name == "fgsm", name in ("pgd", ...)
        r"[\"']-att[\"']\s+in\b",  # "-att" in arch
        r"\.partition\(\"\+\"\)",  # arch.partition("+")
        r"hasattr\([^)]*member_costs",  # ensembles detected by duck typing
        r"PROBE_PREFERENCE|ITERATIVE\s*=",
    ]
    hits = []
    for path in PACKAGE.rglob("*.py"):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if any(re.search(p, line) for p in patterns):
                hits.append(f"{path.relative_to(PACKAGE)}:{i}: {line.strip()}")
    assert not hits, "\n".join(hits)


def _state(model: nn.Module) -> tuple[bool, list[bool], dict[str, torch.Tensor], list[bool]]:
    return (
        model.training,
        [m.training for m in model.modules()],
        copy.deepcopy(model.state_dict()),
        [p.is_contiguous() for p in model.parameters()],
    )


def test_attacks_leave_the_callers_model_alone() -> None:
    """Mode, memory layout and weights of the caller's module are the same after an attack in
    channels_last, with folded BatchNorm, and after an ensemble whose members use both layouts."""
    torch.manual_seed(0)
    model = ra.create_model("vgg-att2-pc", width=0.0625, layout="compact", dropout=0.0).train()
    before = _state(model)
    x, y = torch.rand(6, 3, 32, 32), torch.randint(0, 10, (6,))
    ra.create_attack("pgd", model, steps=2, channels_last=True).sweep(x, y, [0, 4 / 255])
    ra.create_attack("fgsm", model, fold_bn=True).sweep(x, y, [4 / 255])
    model.eval()  # a caller's eval-mode model is used as it is (no copy): library attacks must not switch it to training
    ra.create_attack("fgsm", model, backend="torchattacks").sweep(x, y, [4 / 255])
    ra.create_attack("pgd", model, backend="foolbox", steps=2).sweep(x, y, [4 / 255])
    assert not any(m.training for m in model.modules())
    model.train()
    ra.create_attack("autoattack", model, steps=2, targets=1, fab_steps=2, square_queries=2, channels_last=True).sweep(
        x, y, [2 / 255, 8 / 255]
    )
    after = _state(model)
    assert after[0] == before[0] and after[1] == before[1] and after[3] == before[3]
    assert all(torch.equal(after[2][k], v) for k, v in before[2].items())


def test_a_sweep_leaves_an_import_spec_model_alone(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The module an import spec returns is the caller's: a sweep runs on copies in its own layout."""
    (tmp_path / "shared_model.py").write_text(
        "import torch\nimport robust_attn as ra\n\ntorch.manual_seed(0)\n"
        "MODEL = ra.create_model('vgg', width=0.0625, layout='compact', dropout=0.0).eval()\n\ndef make():\n    return MODEL\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import shared_model  # type: ignore[import-not-found]

    before = _state(shared_model.MODEL)
    spec = ra.parse_spec(
        {
            "models": ["shared_model:make"],
            "n": 12,
            "batch_size": 6,
            "attention_samples": 4,
            "diagnostic_samples": 4,
            "attacks": [{"name": "fgsm", "eps": ["0", "4/255"]}, {"name": "apgd", "steps": 2, "eps": ["2/255"]}],
        }
    )
    ra.run_sweep(spec, tmp_path / "run", progress=False)
    after = _state(shared_model.MODEL)
    assert after[1] == before[1] and after[3] == before[3] and all(torch.equal(after[2][k], v) for k, v in before[2].items())
