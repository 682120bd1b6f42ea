# Copyright (c) mmsfc contributors. All rights reserved.
from .cam_rule import background_rule, channel_argmax, foreground_margin, otsu_bg_offset
from .crf import DEEPLAB_CRF, UNCERTAIN, CRFParams, cams_to_crf_label, crf_labels, crf_probabilities
from .files import (
                  CAM_DTYPE,
                  as_stored_cam,
                  is_valid_cam_file,
                  is_valid_label_png,
                  load_cams,
                  load_label_png,
                  save_cams,
                  save_label_png,
)
from .path_index import PathIndex, get_path_index, search_destinations, search_paths
from .random_walk import (
                  RandomWalkParams,
                  affinity_labels,
                  edge_to_affinity,
                  propagate,
                  sfc_masks,
                  sparse_transition,
)
from .region_refine import RegionRule, as_region_stack, refine_with_regions
from .regions import (
                  REGION_SOURCES,
                  FolderRegions,
                  SAMRegions,
                  SuperpixelRegions,
                  build_region_source,
                  sam_records_to_masks,
                  save_region_map,
)

__all__ = [
    'background_rule', 'channel_argmax', 'foreground_margin', 'otsu_bg_offset', 'CAM_DTYPE',
    'CRFParams', 'DEEPLAB_CRF', 'UNCERTAIN',
    'as_stored_cam',
    'cams_to_crf_label',
    'crf_labels', 'crf_probabilities', 'is_valid_cam_file', 'is_valid_label_png', 'load_cams',
    'load_label_png', 'save_cams', 'save_label_png',
    'PathIndex', 'get_path_index', 'search_destinations', 'search_paths', 'RandomWalkParams',
    'affinity_labels', 'edge_to_affinity', 'propagate', 'sfc_masks', 'sparse_transition',
    'RegionRule', 'as_region_stack', 'refine_with_regions', 'REGION_SOURCES', 'FolderRegions',
    'SAMRegions', 'SuperpixelRegions', 'build_region_source', 'sam_records_to_masks',
    'save_region_map'
]
