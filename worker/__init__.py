"""kmo-portefeuille registration worker."""

from __future__ import annotations

__version__ = "0.1.0"
