"""Style-mixing grid (stylegan2-ada-pytorch ``style_mixing.py``).

Rows take their codes from the row seeds; in each cell the column seed's codes replace the layers
``layers`` (w indices). The first row shows the column seeds, the first column the row seeds, the
top-left cell is blank.
"""

from __future__ import annotations

import torch
from torch import Tensor

from src.visualize.render import render_rgb


def parse_layers(value, num_ws: int) -> list[int]:
    """``'0-3'``, ``'4,5'``, ``[0, 1]`` or an int -> sorted w indices, each checked against ``num_ws``."""
    if isinstance(value, int):
        idx = [value]
    elif isinstance(value, str):
        idx = []
        for part in value.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = part.split("-", 1)
                idx.extend(range(int(lo), int(hi) + 1))
            elif part:
                idx.append(int(part))
    else:
        idx = [int(v) for v in value]
    bad = [i for i in idx if not 0 <= i < num_ws]
    if bad or not idx:
        raise ValueError(f"layers={value!r}: w indices must lie in 0..{num_ws - 1}")
    return sorted(set(idx))


def mix(row_ws: Tensor, col_ws: Tensor, layers: list[int]) -> Tensor:
    """``[R, K, D]`` x ``[C, K, D]`` -> ``[R * C, K, D]``: row codes with ``layers`` from the column."""
    r, c = row_ws.shape[0], col_ws.shape[0]
    out = row_ws[:, None].expand(r, c, *row_ws.shape[1:]).clone()
    out[:, :, layers] = col_ws[None, :, layers].expand(r, c, len(layers), -1)
    return out.reshape(r * c, *row_ws.shape[1:])


def style_mixing_grid(
    model, row_ws: Tensor, col_ws: Tensor, layers: list[int], noise_mode: str = "const"
) -> tuple[Tensor, int]:
    """Images ``[(R + 1) * (C + 1), C, H, W]`` for the grid and its column count ``C + 1``."""
    rows_img = render_rgb(model, row_ws, noise_mode)
    cols_img = render_rgb(model, col_ws, noise_mode)
    mixed = render_rgb(model, mix(row_ws, col_ws, layers), noise_mode)
    r, c = row_ws.shape[0], col_ws.shape[0]
    blank = torch.zeros_like(rows_img[0])
    cells = [blank, *cols_img]
    for i in range(r):
        cells.append(rows_img[i])
        cells.extend(mixed[i * c : (i + 1) * c])
    return torch.stack(cells), c + 1
