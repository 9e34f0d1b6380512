"""A leaderboard over run directories: every model and architecture ranked by robust accuracy
under its strongest evaluation, per threat model and eps, with clean accuracy, the evaluation's
attacks and cost, and the training budget; as one self-contained HTML page, Markdown and CSV."""

from robust_attn.leaderboard.build import Leaderboard, build_leaderboard
from robust_attn.leaderboard.evaluation import CellView, Score, Threat, cell_views, worst_case

__all__ = ["CellView", "Leaderboard", "Score", "Threat", "build_leaderboard", "cell_views", "worst_case"]
