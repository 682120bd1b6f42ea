# Copyright (c) mmsfc contributors. All rights reserved.
"""Install mmsfc. The heavy stack is installed by ``tools/install.sh``."""
import os.path as osp
import re

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version() -> str:
    with open(osp.join(HERE, 'mmsfc', 'version.py'), encoding='utf-8') as f:
        match = re.search(r"^__version__ = '([^']+)'", f.read(), re.M)
    if match is None:
        raise RuntimeError('mmsfc/version.py defines no __version__')
    return match.group(1)


def read_requirements(path: str = 'requirements.txt') -> list:
    """Requirement lines of ``path`` without comments or blank lines."""
    requirements = []
    with open(osp.join(HERE, path), encoding='utf-8') as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                requirements.append(line)
    return requirements


setup(
    name='mmsfc',
    version=read_version(),
    description='SFC (Shared Feature Calibration, AAAI 2024) for weakly '
    'supervised semantic segmentation, as an OpenMMLab (mmseg 1.x) plugin',
    long_description=open(osp.join(HERE, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    python_requires='>=3.11',  # the pinned numpy 2.4
    install_requires=read_requirements(),
    zip_safe=False,
)
