# Copyright (c) mmsfc contributors. All rights reserved.
from .crf import UNCERTAIN, CRFParams, cams_to_crf_label, crf_labels
from .files import (
                    is_valid_cam_file,
                    is_valid_label_png,
                    load_cams,
                    load_label_png,
                    save_cams,
                    save_label_png,
)

__all__ = [
    'CRFParams', 'UNCERTAIN', 'cams_to_crf_label', 'crf_labels', 'is_valid_cam_file',
    'is_valid_label_png', 'load_cams', 'load_label_png', 'save_cams', 'save_label_png'
]
