"""The torch.export importer: the walk (:mod:`.importer`) and the ATen operator handlers; see
:mod:`accelflow.frontends.pytorch`."""
