"""How an exported tensor, which carries the exporter's batch of 1 somewhere, becomes an IR value.

Both importers (ONNX, :mod:`._onnx.importer`; torch.export, :mod:`._torch.importer`) see shapes with the
batch of 1 the model was exported with. A value either *carries the batch axis* as its leading axis (its IR
shape is its shape without it) or not, when the model merged the batch of 1 into another axis
(``x.view(-1, d)`` in GPT-2, ``(1, heads, S, d) -> (heads, S, d)`` before a batched matmul); its IR shape is
then its whole shape. At run time every IR value carries its own batch axis, so both kinds run on any batch.

These are the rules that decide which kind a value is, written once for both importers: a view's result
(:func:`view_shape`), a broadcasting operator's result (:func:`broadcast_batched`), and whether a mean over
the trailing axes is global average pooling (:func:`is_feature_map`).
"""

from __future__ import annotations

from collections.abc import Sequence

from accelflow.ir import ACTIVATION_OPS, Node, OpKind

__all__ = ["view_shape", "broadcast_batched", "is_feature_map"]


def view_shape(target: Sequence[int]) -> tuple[bool, tuple[int, ...]]:
    """Whether a value viewed as ``target`` (a shape with the exporter's batch of 1) carries the batch axis,
    and its IR shape: a leading 1 of a shape of rank 2 or more is taken as the batch axis.

    >>> view_shape((1, 4, 10, 8)), view_shape((4, 10, 8)), view_shape((1,))
    ((True, (4, 10, 8)), (False, (4, 10, 8)), (False, (1,)))
    """
    shape = tuple(int(d) for d in target)
    batched = len(shape) >= 2 and shape[0] == 1
    return batched, shape[1:] if batched else shape


def broadcast_batched(shapes: Sequence[Sequence[int]], batched: Sequence[bool | None], lead: int = 0) -> bool:
    """Whether the output of a broadcasting operator carries the batch axis.

    ``shapes`` are the operands' exported shapes, ``batched[i]`` whether operand ``i`` carries the batch axis
    (None for a constant). The exporters broadcast right-aligned over whole shapes; the IR broadcasts the
    batch axis apart and the rest right-aligned. They agree when the output's axis 0 is a batch axis exactly
    if some batched operand of the full rank puts one there and every operand of the full rank has size 1
    there. ``lead`` > 0 (a matrix product) excludes the trailing matrix axes from that test.
    """
    full = max(len(s) for s in shapes)
    if full <= lead:
        return False
    tops = [s[0] for s in shapes if len(s) == full]
    return any(b and len(s) == full for s, b in zip(shapes, batched, strict=True)) and all(d == 1 for d in tops)


def is_feature_map(x: Node) -> bool:
    """Whether ``x`` is a channels-first feature map (C, H, W), or a (C, L) one made by convolutions or
    pooling, whose mean over the trailing axes is global average pooling (not, say, a layer norm's mean)."""
    if len(x.shape or ()) == 3:
        return True
    for _ in range(32):
        if x.op in (OpKind.CONV, OpKind.CONV_TRANSPOSE, OpKind.MAXPOOL, OpKind.AVGPOOL, OpKind.AFFINE):
            return True
        if not x.inputs or x.op not in ACTIVATION_OPS | {OpKind.ADD, OpKind.MUL, OpKind.RESHAPE}:
            return False
        x = x.inputs[0]
    return False

