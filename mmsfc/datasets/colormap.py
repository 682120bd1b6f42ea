# Copyright (c) mmsfc contributors. All rights reserved.
from typing import List, Tuple


def voc_colormap(num_classes: int) -> List[Tuple[int, int, int]]:
    """The PASCAL VOC colour map (bit-interleaved class index), for any count."""
    colours = []
    for index in range(num_classes):
        red = green = blue = 0
        value = index
        for shift in range(7, -1, -1):
            red |= ((value >> 0) & 1) << shift
            green |= ((value >> 1) & 1) << shift
            blue |= ((value >> 2) & 1) << shift
            value >>= 3
        colours.append((red, green, blue))
    return colours
