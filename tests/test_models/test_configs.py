# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Every leaf config builds and runs one training iteration on SynthRoom.

The pretrained checkpoint is dropped (no network at test time) and crops are
shrunk so even ViT-L stays cheap on CPU; everything else is the config as
shipped (model, optimizer, schedule, hooks, data pipeline).
"""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

CONFIG_DIR = osp.join(osp.dirname(__file__), '..', '..', 'configs')
#: Every leaf config: top level, ablations, baselines, demo (not ``_base_``).
CONFIGS = sorted(
    osp.relpath(p, CONFIG_DIR)
    for pattern in ('*.py', 'ablations/*.py', 'baselines/*.py', 'demo/*.py')
    for p in glob.glob(osp.join(CONFIG_DIR, pattern)))
#: Crop in patches (rows, columns): small but with a real patch grid.
CROP_PATCHES = (4, 6)


def _shrink_pipeline(pipeline, crop):
    for transform in pipeline:
        if transform['type'] == 'MultiTaskRandomCrop':
            transform['crop_size'] = crop


def _synth_cfg(name, nyud_root, pascal_root, work_dir, validate):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    cfg.work_dir = str(work_dir)
    cfg.model.backbone.init_cfg = None
    patch = cfg.model.backbone.get('patch_size', 16)
    crop = (CROP_PATCHES[0] * patch, CROP_PATCHES[1] * patch)
    is_pascal = 'Pascal' in cfg.train_dataloader.dataset.type
    root = pascal_root if is_pascal else nyud_root
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[key]
        loader.dataset.data_root = root
        loader.num_workers = 0
        loader.persistent_workers = False
    cfg.train_dataloader.batch_size = 2
    _shrink_pipeline(cfg.train_dataloader.dataset.pipeline, crop)
    cfg.train_cfg = dict(type='IterBasedTrainLoop',
                         max_iters=1,
                         val_interval=1)
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger.interval = 1
    cfg.log_level = 'WARNING'
    if not validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    return cfg


class _BackboneWatch(Hook):
    """Snapshot the backbone after weight init, compare after training."""

    def before_train(self, runner) -> None:
        self.before = {
            k: v.clone()
            for k, v in runner.model.backbone.state_dict().items()
        }

    def after_train(self, runner) -> None:
        changed = [
            key for key, value in runner.model.backbone.state_dict().items()
            if not torch.equal(value, self.before[key])
        ]
        if runner.model.freeze_backbone:
            assert not changed, changed
        else:  # full fine-tuning (the demo's encoder pre-training)
            assert changed
        self.checked = True


def test_all_leaf_configs_are_listed():
    assert 'fgmoe_nyud.py' in CONFIGS and 'fgmoe_pascal.py' in CONFIGS
    assert len(CONFIGS) >= 6
    assert not any(name.startswith('_base_') for name in CONFIGS)


@pytest.mark.parametrize('name', CONFIGS)
def test_config_trains_one_iteration(name, synth_nyud_root, synth_pascal_root,
                                     tmp_path):
    validate = 'synth-room' in name  # full val loop once, on the CPU config
    cfg = _synth_cfg(name, synth_nyud_root, synth_pascal_root, tmp_path,
                     validate)
    runner = Runner.from_cfg(cfg)
    model = runner.model
    tasks = cfg.model.decode_head.tasks
    assert model.tasks == tasks == cfg.train_dataloader.dataset.tasks
    watch = _BackboneWatch()
    runner.register_hook(watch)
    runner.train()
    assert runner.iter == 1 and watch.checked
    scalars = runner.message_hub.log_scalars
    for task in tasks:
        loss = scalars[f'train/loss_{task}'].current()
        assert loss == loss and abs(loss) != float('inf'), task
    if validate:
        assert any(k.startswith('val/') for k in scalars)


@pytest.mark.parametrize('name', CONFIGS)
def test_training_pads_the_image_like_testing(name):
    # Test time pads the normalised image with 0 (the mean colour) in the
    # data preprocessor. A pipeline pad would give training crops black
    # borders (-1 to -2 after normalisation) that the frozen encoder never
    # sees at test time, and would hide the padding from the balance loss.
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert 'MultiTaskPad' not in [t['type'] for t in pipeline]
    preprocessor = cfg.model.data_preprocessor
    assert preprocessor.type == 'MultiTaskDataPreProcessor'
    assert preprocessor.pad_val == 0


def _image_loaders(cfg):
    """Every ``LoadImageFromFile`` of the config's pipelines (TTA included)."""
    pipelines = [cfg.get('tta_pipeline') or []] + [
        cfg[f'{split}_dataloader'].dataset.pipeline
        for split in ('train', 'val', 'test')
    ]
    return [
        t for pipeline in pipelines for t in pipeline
        if t['type'] == 'LoadImageFromFile'
    ]


@pytest.mark.parametrize('name', CONFIGS)
def test_images_load_without_exif_rotation_like_the_labels(name, tmp_path):
    # Labels are read with PIL, which ignores the EXIF orientation tag; an
    # image rotated by OpenCV's default would no longer match its labels.
    from mmcv.transforms import LoadImageFromFile
    from PIL import Image
    path = str(tmp_path / 'rotated.jpg')
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.new('RGB', (60, 40)).save(path, exif=exif)
    loaders = _image_loaders(Config.fromfile(osp.join(CONFIG_DIR, name)))
    assert len(loaders) >= 3
    for loader in loaders:
        options = {k: v for k, v in loader.items() if k != 'type'}
        results = LoadImageFromFile(**options)(dict(img_path=path))
        assert results['img_shape'] == (40, 60), loader


@pytest.mark.parametrize(
    'name', [name for name in CONFIGS if not name.startswith('demo/')])
def test_validation_counts_edges_fast_and_test_uses_pyedgeeval(name):
    # pyEdgeEval at 99 thresholds would stop training for hours at every
    # validation on NYUD/PASCAL; the reported test numbers keep it.
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    assert cfg.val_evaluator.get('edge_backend') == 'fast'
    assert cfg.test_evaluator.get('edge_backend',
                                  'pyedgeeval') == 'pyedgeeval'


def _crop_size(pipeline):
    return next(tuple(t['crop_size']) for t in pipeline
                if t['type'] == 'MultiTaskRandomCrop')


@pytest.mark.parametrize(
    'name', [n for n in CONFIGS if 'synth-room' not in n
             and not n.startswith('demo/')])
def test_protocol_configs_test_at_the_training_size(name):
    # InvPT / MLoRE pad test images to TEST.SCALE, the training crop.
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    crop = _crop_size(cfg.train_dataloader.dataset.pipeline)
    assert dict(cfg.model.data_preprocessor.test_cfg) == dict(size=crop)


@pytest.mark.parametrize('name', CONFIGS)
def test_crops_follow_the_class_ratio_rule_for_every_task_set(name):
    # cat_max_ratio reads the semseg map: configs without semseg among their
    # tasks (single-task baselines) load it as a guide, so Δm compares runs
    # that crop alike.
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    dataset = cfg.train_dataloader.dataset
    ratios = [t.get('cat_max_ratio', 1.) for t in dataset.pipeline
              if t['type'] == 'MultiTaskRandomCrop']
    if ratios and ratios[0] < 1:
        assert 'semseg' in list(dataset.tasks) + list(
            dataset.get('guide_tasks') or [])


@pytest.mark.parametrize(
    'name', [n for n in CONFIGS if 'pascal' in n])
def test_pascal_part_maps_without_parts_are_ignored_as_invpt(name):
    # InvPT's AddIgnoreRegions: after the crop in training, on the whole
    # image at test time (TTA included).
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    train = [t['type'] for t in cfg.train_dataloader.dataset.pipeline]
    assert train.index('IgnoreEmptyLabels') == \
        train.index('MultiTaskRandomCrop') + 1
    test = [t['type'] for t in cfg.test_dataloader.dataset.pipeline]
    assert test.index('IgnoreEmptyLabels') == \
        test.index('LoadMultiTaskAnnotations') + 1
    tta = cfg.tta_pipeline[-1]['transforms']
    assert [t['type'] for t in tta[-2]] == ['IgnoreEmptyLabels']
    assert [t['type'] for t in tta[-3]] == ['LoadMultiTaskAnnotations']
