"""Name -> factory registry for classifiers, in the style of timm's ``register_model``."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any, TypeVar

import torch.nn as nn

from robust_attn.errors import ModelError

ModelFactory = Callable[..., nn.Module]
F = TypeVar("F", bound=ModelFactory)

_MODELS: dict[str, ModelFactory] = {}


def register_model(name: str) -> Callable[[F], F]:
    """Decorator that records ``factory`` under ``name``."""

    def deco(factory: F) -> F:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        _MODELS[name] = factory
        return factory

    return deco


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted."""
    return sorted(n for n in _MODELS if fnmatch.fnmatchcase(n, pattern))


def get_factory(name: str) -> ModelFactory:
    """The factory registered as ``name``; an unknown name raises listing the known ones."""
    try:
        return _MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(list_models())}") from None


def create_model(name: str, **kwargs: object) -> nn.Module:
    """Build the registered model ``name`` with ``kwargs`` (num_classes, width, layout, ...)."""
    model = get_factory(name)(**kwargs)
    # Recorded so checkpoints can rebuild the exact architecture.
    setattr(model, "model_name", name)  # noqa: B010  (nn.Module's __setattr__ is typed for tensors)
    setattr(model, "model_kwargs", dict(kwargs))  # noqa: B010
    return model


def create_model_for(name: str, data: Any, **kwargs: object) -> nn.Module:
    """``name`` shaped for the data set ``data``: its class count, channels, image side and
    normalisation (the model normalises its [0, 1] input itself)."""
    c, h, _ = data.image_shape
    return create_model(
        name, num_classes=len(data.classes), in_channels=c, image_size=h, mean=list(data.mean), std=list(data.std), **kwargs
    )
