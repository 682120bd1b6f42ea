# Copyright (c) mmsfc contributors. All rights reserved.
__version__ = '0.1.0'


def parse_version_info(version_str: str) -> tuple:
    """Parse ``'0.1.0'`` (or ``'0.1.0rc1'``) into a tuple such as ``(0, 1, 0)``."""
    parts = []
    for part in version_str.split('.'):
        if part.isdigit():
            parts.append(int(part))
        else:
            parts.append(part)
    return tuple(parts)


version_info = parse_version_info(__version__)
