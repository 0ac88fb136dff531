# Copyright (c) mmfgmoe contributors. All rights reserved.
import os.path as osp
import re

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version() -> str:
    with open(osp.join(HERE, 'mmfgmoe', 'version.py'), encoding='utf-8') as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


def parse_requirements(name: str) -> list:
    """Requirement lines of ``requirements/<name>.txt`` without comments."""
    lines = []
    with open(osp.join(HERE, 'requirements', name), encoding='utf-8') as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                lines.append(line)
    return lines


setup(
    name='mmfgmoe',
    version=read_version(),
    description='FGMoE: fine-grained mixture-of-experts decoders for multi-task '
    'dense prediction on a frozen ViT, as an OpenMMLab plugin',
    long_description=open(osp.join(HERE, 'README.md'), encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    python_requires='>=3.10',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    include_package_data=True,
    install_requires=parse_requirements('runtime.txt'),
    extras_require={
        'mim': parse_requirements('mminstall.txt'),
        'tests': parse_requirements('tests.txt'),
        'optional': parse_requirements('optional.txt'),
    },
    zip_safe=False,
)
