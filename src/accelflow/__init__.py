"""accelflow: co-design deep neural networks and the hardware accelerators that run them."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("accelflow")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
