"""X-Net: tree networks with learnable activations and adaptable structure, trained by
Alternating Backpropagation (Li et al., arXiv:2401.01772). See docs/xnet.md."""
from .estimators import XNetClassifier, XNetRegressor
from .library import DEFAULT_LIBRARY, Activation, register_activation
from .persist import load, save

__all__ = ["XNetRegressor", "XNetClassifier", "Activation", "register_activation", "DEFAULT_LIBRARY", "save", "load"]
