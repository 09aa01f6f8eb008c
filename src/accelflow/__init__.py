"""accelflow: co-design deep neural networks and the hardware accelerators that run them."""

from importlib.metadata import PackageNotFoundError, version

from accelflow import _model_import  # noqa: F401 - lets any process find the classes of users' model files

try:
    __version__ = version("accelflow")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
