"""Reader for gzip-compressed IDX files (the MNIST / Fashion-MNIST container format).

An IDX file starts with a 4-byte magic number ``0x00 0x00 <dtype> <ndim>`` followed by ``ndim`` big-endian
uint32 dimensions and the raw array. Only unsigned-byte payloads (dtype code 0x08) occur in these sets.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from accelflow.errors import DataError

__all__ = ["read_idx_gz"]

_UBYTE = 0x08


def read_idx_gz(path: Path, expected_ndim: int) -> np.ndarray:
    """Decode one ``.gz`` IDX file into a read-only uint8 array of ``expected_ndim`` dimensions.

    Raises :class:`DataError` naming ``path`` when the file is missing, not gzip, truncated, has the wrong
    magic number or a payload size that disagrees with its header.
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: not a readable gzip file ({exc}); reinstall the data set") from exc
    if len(raw) < 4:
        raise DataError(f"{path}: only {len(raw)} bytes after decompression, too short for an IDX header")
    zero1, zero2, dtype_code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero1 or zero2 or dtype_code != _UBYTE or ndim != expected_ndim:
        magic = int.from_bytes(raw[:4], "big")
        want = (_UBYTE << 8) | expected_ndim
        raise DataError(f"{path}: bad IDX magic number 0x{magic:08x}, expected 0x{want:08x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: IDX header truncated")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: IDX payload has {len(raw) - header} bytes but the header {dims} needs {expected}"
        )
    arr = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
    arr.setflags(write=False)
    return arr
