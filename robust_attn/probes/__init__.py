"""Probes run during a sweep: attention maps under attack and weakly supervised segmentation."""

from robust_attn.probes.maps import has_attention
from robust_attn.probes.study import probe_model

__all__ = ["has_attention", "probe_model"]
