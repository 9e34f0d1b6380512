"""Training: recipes, batch augmentation and the resumable training loop."""

from robust_attn.training.recipes import RECIPES, Recipe, get_recipe
from robust_attn.training.trainer import TrainConfig, TrainResult, resume_path, train_model

__all__ = ["RECIPES", "Recipe", "TrainConfig", "TrainResult", "get_recipe", "resume_path", "train_model"]
