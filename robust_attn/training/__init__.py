"""Training: recipes, batch augmentation and the resumable training loop."""

from robust_attn.training.recipes import RECIPES, Recipe, check_epochs, get_recipe
from robust_attn.training.trainer import TrainConfig, TrainResult, resume_path, train_model

__all__ = ["RECIPES", "Recipe", "TrainConfig", "TrainResult", "check_epochs", "get_recipe", "resume_path", "train_model"]
