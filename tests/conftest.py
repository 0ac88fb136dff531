# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Shared fixtures: small SynthRoom datasets written in the real layouts."""
import pytest
from hypothesis import settings

# The property tests explore the same examples on every run: CI is
# reproducible, and a failure found once is found again.
settings.register_profile('mmfgmoe', derandomize=True, database=None)
settings.load_profile('mmfgmoe')

# Image size and split sizes kept tiny so the whole suite stays fast on 2 cores.
SYNTH_HEIGHT, SYNTH_WIDTH = 96, 128


@pytest.fixture(scope='session')
def synth_nyud_root(tmp_path_factory) -> str:
    """A ``NYUDv2/`` folder (png/npy packaging) with 6 train / 3 val images."""
    from mmfgmoe.datasets.synth_room import generate_synth_room
    out = tmp_path_factory.mktemp('synth_nyud')
    return generate_synth_room(
        str(out), layout='nyud', num_train=6, num_val=3,
        height=SYNTH_HEIGHT, width=SYNTH_WIDTH, seed=0)


@pytest.fixture(scope='session')
def synth_pascal_root(tmp_path_factory) -> str:
    """A ``PASCAL_MT/`` folder with 6 train / 3 val images (persons included)."""
    from mmfgmoe.datasets.synth_room import generate_synth_room
    out = tmp_path_factory.mktemp('synth_pascal')
    return generate_synth_room(
        str(out), layout='pascal', num_train=6, num_val=3,
        height=SYNTH_HEIGHT, width=SYNTH_WIDTH, seed=0)
