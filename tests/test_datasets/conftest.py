# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Fixtures of the data tests (on top of the shared ``tests/conftest.py``)."""
import shutil

import pytest
from mmengine.registry import init_default_scope

SYNTH_HEIGHT, SYNTH_WIDTH = 96, 128


@pytest.fixture(autouse=True)
def _mmseg_scope():
    """Configs name transforms in the mmseg scope, as in the real configs."""
    import mmfgmoe  # noqa: F401  (registers everything)
    init_default_scope('mmseg')


@pytest.fixture(scope='session')
def synth_nyud_mt_root(tmp_path_factory) -> str:
    """A ``NYUD_MT/`` folder (jpg/npy packaging), 6 train / 3 val images."""
    from mmfgmoe.datasets.synth_room import generate_synth_room
    out = tmp_path_factory.mktemp('synth_nyud_mt')
    return generate_synth_room(
        str(out), layout='nyud_mt', num_train=6, num_val=3,
        height=SYNTH_HEIGHT, width=SYNTH_WIDTH, seed=0)


@pytest.fixture
def nyud_copy(synth_nyud_root, tmp_path) -> str:
    """A private copy of the NYUDv2 fixture that a test may corrupt."""
    return shutil.copytree(synth_nyud_root, str(tmp_path / 'NYUDv2'))


@pytest.fixture
def nyud_mt_copy(synth_nyud_mt_root, tmp_path) -> str:
    return shutil.copytree(synth_nyud_mt_root, str(tmp_path / 'NYUD_MT'))


@pytest.fixture
def pascal_copy(synth_pascal_root, tmp_path) -> str:
    return shutil.copytree(synth_pascal_root, str(tmp_path / 'PASCAL_MT'))
