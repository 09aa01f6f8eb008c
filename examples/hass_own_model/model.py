"""Your own PyTorch model, for `accelflow hass model.py --weights digits_cnn.pt --data digits_image`.

accelflow runs this file and calls ``build_model()`` (any name works: pass ``model.py:NAME``). The weights
come from the state dict that ``train.py`` saved; HASS then searches per-layer weight and activation
thresholds for the model's convolutions and ReLUs on a dataflow FPGA accelerator.
"""

from torch import nn

INPUT_SHAPE = (1, 8, 8)  # scikit-learn's 8x8 digits as one-channel images (accelflow data set digits_image)


def build_model(num_classes: int = 10) -> nn.Module:
    """A small CNN: three 3x3 conv-BN-ReLU blocks (16, 32, 32 channels), one 2x2 max-pool, global average
    pool, linear classifier."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(32, num_classes),
    )
