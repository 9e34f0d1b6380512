"""Probes run during a sweep: attention maps under attack, weakly supervised segmentation (with
class activation maps of the models without attention) and linear probes on frozen features."""

from robust_attn.probes.features import extract_features, has_features, model_features
from robust_attn.probes.generalisation import generalisation_rows, generalisation_summary
from robust_attn.probes.maps import has_attention
from robust_attn.probes.study import probe_model

__all__ = [
    "extract_features",
    "generalisation_rows",
    "generalisation_summary",
    "has_attention",
    "has_features",
    "model_features",
    "probe_model",
]
