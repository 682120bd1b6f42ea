# Copyright (c) mmsfc contributors. All rights reserved.
"""A cheap check of a split's image files before training starts."""
from typing import List, Sequence

from PIL import Image, UnidentifiedImageError


def unreadable_image(path: str) -> str:
    """Why ``path`` cannot be an image ('' when its header reads).

    Opens the file with PIL, which reads the format header (size, mode,
    EXIF) but decodes no pixel, so a file truncated in its header or not an
    image at all is found; damage inside the compressed pixel data is not.
    """
    try:
        with Image.open(path) as image:
            width, height = image.size
    except FileNotFoundError:
        return 'missing'
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        return f'unreadable ({type(e).__name__}: {e})'
    if width == 0 or height == 0:
        return f'empty ({width}x{height})'
    return ''


def check_image_files(paths: Sequence[str], source: str) -> None:
    """Raise one ``FileNotFoundError`` / ``ValueError`` naming every bad image of ``paths``.

    Args:
        paths (Sequence[str]): Image paths of a split.
        source (str): The split, named in the error (e.g. its ``ann_file``).
    """
    problems: List[str] = []
    missing = 0
    for path in paths:
        why = unreadable_image(path)
        if why:
            problems.append(f'  {path}: {why}')
            missing += why == 'missing'
    if not problems:
        return
    message = (f'{len(problems)} of the {len(paths)} images of {source} cannot be read '
               f"(pass check_files=False to the dataset to skip this check):\n"
               + '\n'.join(problems))
    raise (FileNotFoundError if missing == len(problems) else ValueError)(message)
