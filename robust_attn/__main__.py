"""``python -m robust_attn`` (what torchrun launches): the robust-attn command."""

import sys

from robust_attn.cli import main

sys.exit(main())
