# Copyright (c) mmfgmoe contributors. All rights reserved.
"""Task lists of model, data and evaluators are checked when a config is read."""
import glob
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

from mmfgmoe.utils import check_config_tasks

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NYUD = osp.join(ROOT, 'configs', 'fgmoe_nyud.py')
ALL_NYUD = ['semseg', 'depth', 'normals', 'edge']
LEAF_CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                         recursive=True) if '_base_' not in p)


@pytest.mark.parametrize('path', LEAF_CONFIGS,
                         ids=lambda p: osp.relpath(p, ROOT))
def test_shipped_configs_agree(path):
    check_config_tasks(Config.fromfile(path))


def _nyud(**options) -> Config:
    cfg = Config.fromfile(NYUD)
    cfg.merge_from_dict(options)
    return cfg


def test_head_subset_without_data_names_every_dataloader():
    cfg = _nyud(**{'model.decode_head.tasks': ['semseg', 'normals']})
    with pytest.raises(ValueError) as err:
        check_config_tasks(cfg)
    msg = str(err.value)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert f'{key}.dataset.tasks = {ALL_NYUD}' in msg
    assert "tasks = ['semseg', 'normals']" in msg  # the fix, spelled out


def test_subset_set_everywhere_passes_in_any_order():
    tasks = ['normals', 'semseg']
    cfg = _nyud(**{'model.decode_head.tasks': ['semseg', 'normals']},
                tasks=tasks,
                **{f'{k}.dataset.tasks': tasks
                   for k in ('train_dataloader', 'val_dataloader',
                             'test_dataloader')})
    check_config_tasks(cfg)


def test_unset_dataset_tasks_mean_all_of_the_dataset():
    cfg = _nyud(**{'model.decode_head.tasks': ['depth']})
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.pop('tasks')
    cfg.val_dataloader.dataset.tasks = ['depth']
    cfg.test_dataloader.dataset.tasks = ['depth']
    with pytest.raises(ValueError, match=r'train_dataloader\.dataset\.tasks '
                       r'\(unset: all of NYUDv2MultiTaskDataset\.TASKS\)'):
        check_config_tasks(cfg)


def test_wrapped_datasets_are_looked_through():
    cfg = _nyud()
    inner = cfg.train_dataloader.dataset
    other = dict(inner, tasks=['semseg'])
    cfg.train_dataloader.dataset = dict(
        type='RepeatDataset', times=2,
        dataset=dict(type='ConcatDataset', datasets=[inner, other]))
    with pytest.raises(ValueError) as err:
        check_config_tasks(cfg)
    msg = str(err.value)
    assert ("train_dataloader.dataset.dataset.datasets[1].tasks = ['semseg']"
            in msg)
    assert 'datasets[0]' not in msg


def test_evaluator_tasks_must_be_predicted():
    cfg = _nyud(**{'val_evaluator.tasks': ['semseg']})
    check_config_tasks(cfg)  # a subset is fine
    cfg = _nyud(**{'test_evaluator.tasks': ['semseg', 'saliency']})
    with pytest.raises(ValueError, match=r'test_evaluator\.tasks'):
        check_config_tasks(cfg)


def test_child_config_top_level_tasks_do_not_propagate(tmp_path):
    """Why the check exists: mmengine fills the base's dicts when it reads
    the base, so ``tasks = [...]`` in a child changes nothing else."""
    child = tmp_path / 'child.py'
    child.write_text(f"_base_ = [{NYUD!r}]\n"
                     "tasks = ['semseg', 'depth']\n")
    with pytest.raises(ValueError) as err:  # would train all four tasks
        check_config_tasks(Config.fromfile(str(child)))
    assert ("tasks = ['semseg', 'depth'] (the top-level list"
            in str(err.value))
    child.write_text(child.read_text() +
                     "model = dict(decode_head=dict(tasks=tasks))\n")
    with pytest.raises(ValueError, match='val_dataloader'):
        check_config_tasks(Config.fromfile(str(child)))
    child.write_text(child.read_text() +
                     "train_dataloader = dict(dataset=dict(tasks=tasks))\n"
                     "val_dataloader = dict(dataset=dict(tasks=tasks))\n"
                     "test_dataloader = val_dataloader\n")
    check_config_tasks(Config.fromfile(str(child)))


def test_train_tool_refuses_before_building_anything(tmp_path):
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', NYUD, '--work-dir',
         str(tmp_path), '--cfg-options',
         "model.decode_head.tasks=[semseg,normals]"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "task lists disagree" in proc.stderr
    assert not list(tmp_path.iterdir())  # no log, no work dir content


def test_class_map_tasks_are_described_in_the_task_table():
    """The class-map tasks carry where their classes, colours and logits
    live; every other task's output width is its label width."""
    from mmfgmoe.datasets import PascalContextMultiTaskDataset
    from mmfgmoe.models.decode_heads.fgmoe_head import DEFAULT_OUT_CHANNELS
    from mmfgmoe.utils import TASK_SPECS
    class_maps = [t for t, spec in TASK_SPECS.items() if spec.classes_key]
    assert class_maps == ['semseg', 'human_parts']
    for task in class_maps:
        spec = TASK_SPECS[task]
        assert spec.discrete and spec.palette_key and spec.logits_field
        # the dataset's metainfo holds both keys
        assert spec.classes_key in PascalContextMultiTaskDataset.METAINFO
        assert spec.palette_key in PascalContextMultiTaskDataset.METAINFO
    assert TASK_SPECS['semseg'].logits_field == 'seg_logits'  # mmseg's
    assert DEFAULT_OUT_CHANNELS == dict(saliency=1, edge=1, depth=1,
                                        normals=3)
