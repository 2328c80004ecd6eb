"""Contract checks that plugin authors can run on their own components.

Each check raises ``AssertionError`` with a clear message when a component breaks the contract that
blurkit relies on. blurkit's own test-suite runs them over every registered component, so a new blur,
model or metric is tested automatically.

Examples:
    >>> from blurkit.testing import check_blur
    >>> check_blur("gaussian")
"""

from blurkit.testing.blurs import check_blur
from blurkit.testing.metrics import check_metric
from blurkit.testing.models import check_model

__all__ = ["check_blur", "check_metric", "check_model"]
