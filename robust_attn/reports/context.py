"""What every section of a report reads: the run and the tables computed from it, each computed
once, when a section first asks for it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import pandas as pd

from robust_attn.reports import figures, tables, threats
from robust_attn.reports.checks import Check, indicator_checks, run_checks
from robust_attn.reports.verdicts import annotate
from robust_attn.rundir import Run


@dataclass
class Context:
    run: Run
    attention: bool = True  # False: the attention and segmentation sections are left out

    @property
    def title(self) -> str:
        return "Robustness report: " + str(self.run.manifest.get("spec", {}).get("name", self.run.root.name))

    @cached_property
    def table(self) -> pd.DataFrame:
        """Model-level curves (tables.curves), with the 'all attacks' rows."""
        return tables.curves(self.run)

    @cached_property
    def summary(self) -> pd.DataFrame:
        return tables.summary(self.run, self.table)

    @cached_property
    def members(self) -> dict[str, list[str]]:
        """Population label -> its models (one per training seed)."""
        return tables.architectures(self.run)

    @cached_property
    def arch_of(self) -> dict[str, str]:
        return {m: arch for arch, models in self.members.items() for m in models}

    @cached_property
    def seeds(self) -> int:
        return tables.seeds_per_architecture(self.run)

    @cached_property
    def _palette(self) -> tuple[dict[str, figures.Colour], dict[str, str], dict[str, figures.Colour]]:
        return figures.palette(self.members)

    @property
    def colours(self) -> dict[str, figures.Colour]:
        return self._palette[0]

    @property
    def markers(self) -> dict[str, str]:
        return self._palette[1]

    @property
    def arch_colours(self) -> dict[str, figures.Colour]:
        return self._palette[2]

    @cached_property
    def claims(self) -> pd.DataFrame:
        """The paper's claims with their verdicts, ``fragile`` and ``label`` (verdict + '(fragile)')."""
        return annotate(threats.all_claims(self.run))

    @cached_property
    def arch(self) -> pd.DataFrame:
        """Architecture-level curves (only meaningful with two seeds or more per architecture)."""
        return tables.architecture_curves(self.run)

    @cached_property
    def pairs(self) -> pd.DataFrame:
        """Architecture-level pairwise differences (every attack and eps)."""
        return tables.architecture_pairs(self.run)

    @cached_property
    def focus(self) -> str | None:
        """The headline attack."""
        return tables.headline_attack(self.run, self.table)

    @cached_property
    def headline(self) -> pd.DataFrame:
        """The headline curve: per architecture with two seeds or more, else per model."""
        return tables.headline_curve(self.run, self.table, self.arch if self.seeds >= 2 else None)

    @cached_property
    def paired(self) -> pd.DataFrame:
        return tables.paired_comparisons(self.run)

    @cached_property
    def checks(self) -> list[Check]:
        """The sanity checks and the indicators of attack failure (over eps-ball rows: a corruption has no eps)."""
        run = self.run
        clean_counts = {m: (int(run.clean_correct(m).sum()), len(run.labels)) for m in run.models}
        results = run.results_with_traits()
        results = results[results["eps"].notna()]
        combined = self.table[self.table["attack"] == tables.ALL_ATTACKS].assign(
            name=tables.ALL_ATTACKS, backend="native", params="{}", threat_model="white-box"
        )
        results = pd.concat([results, combined[results.columns.intersection(combined.columns)]], ignore_index=True)
        return run_checks(results, clean_counts) + indicator_checks(run.indicators)
