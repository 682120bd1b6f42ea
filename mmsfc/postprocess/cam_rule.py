# Copyright (c) mmsfc contributors. All rights reserved.
"""The rule that turns CAMs into labels, shared by the model, the metrics and the CRF.

Plain arithmetic on numpy arrays or torch tensors, no dependency.
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
