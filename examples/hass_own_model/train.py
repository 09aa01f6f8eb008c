"""Train ``model.py``'s CNN on the 8x8 digits with a plain PyTorch loop and save its state dict.

The images come from ``accelflow.data.load("digits_image")``, the same preparation (and the same train /
validation / test split) that ``accelflow hass --data digits_image`` measures accuracy with: train on the
data set's own preparation, or the search starts from a model that looks untrained.

    python examples/hass_own_model/train.py digits_cnn.pt
"""

import runpy
import sys
from pathlib import Path

import torch
from torch import nn

from accelflow.data import load


def main(out: str) -> None:
    torch.manual_seed(0)
    build_model = runpy.run_path(str(Path(__file__).with_name("model.py")))["build_model"]
    model = build_model()
    splits = load("digits_image")
    x, y = torch.from_numpy(splits.train.x), torch.from_numpy(splits.train.y)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _epoch in range(30):
        model.train()
        for idx in torch.randperm(len(x)).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        val = (model(torch.from_numpy(splits.val.x)).argmax(1).numpy() == splits.val.y).mean()
    torch.save(model.state_dict(), out)
    print(f"validation accuracy {100 * val:.1f}%; weights saved to {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "digits_cnn.pt")
