"""tests/reference/safetensors_io.py — read and write the safetensors format with numpy (no safetensors package).

File layout (the same as tinyds/train/safetensors.h):
    8 bytes     little-endian u64 N, the length of the JSON header
    N bytes     JSON: {"__metadata__": {"key": "string value", ...},
                       "<name>": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...}
    the rest    raw little-endian tensor bytes; offsets are relative to the start of this data block.

Supported dtypes: F32, F64, I32, I64. The reader checks what tinyds's reader checks (header in range, valid JSON,
known dtype, offsets matching the shape, no overlaps, no holes, no trailing bytes) so that a file it accepts is one
tinyds accepts too. The writer pads the header with spaces so the data starts at an 8-byte aligned position, lays
the tensors out back to back in the order given, and writes "<path>.tmp" then renames it over <path>.

    tensors, metadata = read_safetensors(path)     # {name: np.ndarray}, {key: str}
    write_safetensors(path, tensors, metadata)
"""
import json
import os
import struct

import numpy as np

# safetensors dtype name <-> little-endian numpy dtype
DTYPES = {
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I32": np.dtype("<i4"),
    "I64": np.dtype("<i8"),
}


class SafetensorsError(ValueError):
    """A malformed file or an unsupported tensor; the message names the file and what is wrong."""


def _dtype_name(arr, name):
    for key, dt in DTYPES.items():
        if arr.dtype == dt or arr.dtype == dt.newbyteorder("="):
            return key
    raise SafetensorsError(f"tensor '{name}': unsupported numpy dtype {arr.dtype} "
                           f"(supported: float32, float64, int32, int64)")


def read_safetensors(path):
    """Returns (tensors, metadata): tensors maps name -> np.ndarray (a writable copy, native byte order),
    metadata maps key -> str (the "__metadata__" object, {} if absent). Raises SafetensorsError on a bad file."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise SafetensorsError(f"{path}: file is {len(blob)} bytes, too short for the 8-byte header length")
    (n_header,) = struct.unpack("<Q", blob[:8])
    if 8 + n_header > len(blob):
        raise SafetensorsError(f"{path}: header length {n_header} runs past the end of the file ({len(blob)} bytes)")
    try:
        header = json.loads(blob[8:8 + n_header].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{path}: header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header must be a JSON object")
    data = memoryview(blob)[8 + n_header:]

    metadata = header.pop("__metadata__", {}) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsError(f"{path}: __metadata__ must be an object with string values")

    tensors, spans = {}, []
    for name, info in header.items():
        where = f"{path}: tensor '{name}'"
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise SafetensorsError(f"{where}: expected exactly the fields dtype, shape, data_offsets, got {info}")
        if info["dtype"] not in DTYPES:
            raise SafetensorsError(f"{where}: unknown dtype '{info['dtype']}' (supported: {', '.join(DTYPES)})")
        dt = DTYPES[info["dtype"]]
        shape = info["shape"]
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise SafetensorsError(f"{where}: shape must be a list of non-negative integers, got {shape}")
        begin, end = info["data_offsets"]
        numel = int(np.prod(shape, dtype=np.int64))
        if not (0 <= begin <= end <= len(data)):
            raise SafetensorsError(f"{where}: data_offsets [{begin}, {end}] outside the data block "
                                   f"of {len(data)} bytes")
        if end - begin != numel * dt.itemsize:
            raise SafetensorsError(f"{where}: data_offsets span {end - begin} bytes but shape {shape} of "
                                   f"{info['dtype']} needs {numel * dt.itemsize}")
        arr = np.frombuffer(data[begin:end], dtype=dt).reshape(shape)
        tensors[name] = arr.astype(dt.newbyteorder("="), copy=True)
        spans.append((begin, end, name))

    # The data block must be covered exactly once: no overlaps, no holes, nothing after the last tensor.
    position = 0
    for begin, end, name in sorted(spans):
        if begin < position:
            raise SafetensorsError(f"{path}: tensor '{name}' at byte {begin} overlaps the previous tensor")
        if begin > position:
            raise SafetensorsError(f"{path}: unused bytes [{position}, {begin}) before tensor '{name}'")
        position = end
    if position != len(data):
        raise SafetensorsError(f"{path}: {len(data) - position} trailing bytes after the last tensor")
    return tensors, dict(metadata)


def write_safetensors(path, tensors, metadata=None):
    """Writes tensors ({name: array-like}, in the given order) and metadata ({key: str}) to path, atomically."""
    metadata = dict(metadata or {})
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise SafetensorsError(f"metadata '{key}': values must be strings, got {type(value).__name__}")
    header = {"__metadata__": metadata} if metadata else {}
    chunks, offset = [], 0
    for name, value in tensors.items():
        if name == "__metadata__":
            raise SafetensorsError("a tensor may not be named '__metadata__'")
        arr = np.asarray(value)
        dtype = _dtype_name(arr, name)
        raw = np.ascontiguousarray(arr, dtype=DTYPES[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # 8 + len(text) is then a multiple of 8: the data block starts aligned
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in chunks:
            f.write(raw)
    os.replace(tmp, path)  # never leave a half-written file under the real name
