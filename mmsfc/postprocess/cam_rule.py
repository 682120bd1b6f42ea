# Copyright (c) mmsfc contributors. All rights reserved.
"""The rule that turns CAMs into labels, shared by the model, the metrics and the CRF.

Plain arithmetic, nothing from the rest of mmsfc: :func:`background_rule` takes numpy
arrays or torch tensors, :func:`channel_argmax` torch tensors.
"""


def background_rule(cam, bg_offset: float = 0.4, fg_scale: float = 2.0):
    """The authors' transform of a max-normalised map (docs/method_notes.md §12).

    ``M' = [M_bg + bg_offset, fg_scale * M_c]``: a pixel goes to foreground
    class ``c`` iff ``M_c > (M_bg + bg_offset) / fg_scale``. Works on torch
    tensors and numpy arrays alike.

    Args:
        cam (Tensor | np.ndarray): Maps of shape ``(..., C, H, W)``, channel 0
            the background.
        bg_offset (float): Added to the background.
        fg_scale (float): Factor on the foreground channels.

    Returns:
        Tensor | np.ndarray: ``M'``, same shape and type.
    """
    out = cam * fg_scale
    out[..., 0, :, :] = cam[..., 0, :, :] + bg_offset
    return out


def channel_argmax(scores, dim: int = 0, keepdim: bool = False):
    """``scores.argmax(dim, keepdim)`` of a torch tensor, computed by ``max``.

    The indices are those of ``torch.argmax``: the first maximal one on ties,
    and a NaN counts as the maximum. On CPUs, torch's ``argmax`` over a
    dimension that is not the innermost, e.g. the classes of ``(K+1, H, W)``
    maps, runs a slow kernel. ``max(dim).indices`` computes the same indices
    8-30x faster for the CAM shapes here (torch 2.5.1: 35 against 1.2 ms for
    ``(3, 375, 500)`` over dim 0).

    Args:
        scores (Tensor): Scores of any shape, e.g. ``(K+1, H, W)`` or
            ``(N, K+1, h, w)``.
        dim (int): The dimension to reduce (the classes).
        keepdim (bool): Keep ``dim`` with size 1.

    Returns:
        Tensor: Indices (int64), the shape of ``scores`` without ``dim`` (or
        with size 1 there).
    """
    return scores.max(dim=dim, keepdim=keepdim).indices
