# Copyright (c) mmfgmoe contributors. All rights reserved.
import os.path as osp
from typing import Optional, Sequence

from mmseg.registry import DATASETS
from .base_multitask import BaseMultiTaskDataset, voc_colormap

__all__ = ['NYUDv2MultiTaskDataset', 'NYU40_CLASSES', 'NYUD_PACKAGINGS']

NYU40_CLASSES = (
    'wall', 'floor', 'cabinet', 'bed', 'chair', 'sofa', 'table', 'door',
    'window', 'bookshelf', 'picture', 'counter', 'blinds', 'desk', 'shelves',
    'curtain', 'dresser', 'pillow', 'mirror', 'floor mat', 'clothes',
    'ceiling', 'books', 'refridgerator', 'television', 'paper', 'towel',
    'shower curtain', 'box', 'whiteboard', 'person', 'night stand', 'toilet',
    'sink', 'lamp', 'bathtub', 'bag', 'otherstructure', 'otherfurniture',
    'otherprop')

# File name pattern and reader of each task in the two public packagings.
NYUD_PACKAGINGS = {
    # InvPT / TaskPrompter / MLoRE
    'nyudv2': dict(
        image='images/{}.png',
        semseg=('segmentation/{}.png', 'nyu_semseg_png'),
        depth=('depth/{}.npy', 'depth_npy'),
        normals=('normals/{}.png', 'normals_png'),
        edge=('edge/{}.png', 'edge_png')),
    # MTL-PyTorch / ATRC / M3ViT
    'nyud_mt': dict(
        image='images/{}.jpg',
        semseg=('segmentation/{}.png', 'nyu_semseg_png'),
        depth=('depth/{}.npy', 'depth_npy'),
        normals=('normals/{}.npy', 'normals_npy'),
        edge=('edge/{}.npy', 'edge_npy')),
}


@DATASETS.register_module()
class NYUDv2MultiTaskDataset(BaseMultiTaskDataset):
    """NYUD-v2 for multi-task dense prediction (795 train / 654 val).

    Reads both public packagings (README, "Data"), chosen by ``packaging`` or
    detected from the image files of the first listed id:

    - ``nyudv2`` (``NYUDv2/``: InvPT, TaskPrompter, MLoRE):
      ``gt_sets/{split}.txt``, ``images/<id>.png``,
      ``segmentation/<id>.png``, ``depth/<id>.npy``, ``normals/<id>.png``,
      ``edge/<id>.png``;
    - ``nyud_mt`` (``NYUD_MT/``: MTL-PyTorch, ATRC): ``images/<id>.jpg``,
      ``normals/<id>.npy`` and ``edge/<id>.npy``, the rest alike.

    Labels: semseg 40 classes (file value 0 = unlabeled -> 255, else value
    - 1), depth in metres (0 = invalid), normals (unit, all-zero where the
    decoded vector is shorter than ``normals_min_norm``), edges 0/1.

    Args:
        data_root (str): The ``NYUDv2/`` or ``NYUD_MT/`` folder.
        split (str): 'train' or 'val'. Defaults to 'train'.
        tasks (Sequence[str], optional): Subset of ``('semseg', 'depth',
            'normals', 'edge')``. Defaults to all four.
        packaging (str, optional): 'nyudv2', 'nyud_mt' or None (detect).
        normals_min_norm (float): See above. Defaults to 0.5.
        **kwargs: :class:`BaseMultiTaskDataset` / ``BaseSegDataset`` args.
    """
    TASKS = ('semseg', 'depth', 'normals', 'edge')
    METAINFO = dict(classes=NYU40_CLASSES, palette=voc_colormap(41)[1:])

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 tasks: Optional[Sequence[str]] = None,
                 packaging: Optional[str] = None,
                 normals_min_norm: float = 0.5,
                 **kwargs) -> None:
        if packaging is not None and packaging not in NYUD_PACKAGINGS:
            raise ValueError(f'`packaging` must be one of '
                             f'{list(NYUD_PACKAGINGS)} or None, got '
                             f'{packaging!r}')
        self.packaging = packaging
        self.normals_min_norm = normals_min_norm
        super().__init__(data_root=data_root, split=split, tasks=tasks,
                         **kwargs)

    def split_file(self) -> str:
        """``gt_sets/<split>.txt``."""
        return osp.join(self.data_root, 'gt_sets', f'{self.split}.txt')

    def _detect_packaging(self, sample_id: str) -> str:
        for name, layout in NYUD_PACKAGINGS.items():
            if osp.isfile(osp.join(self.data_root,
                                   layout['image'].format(sample_id))):
                return name
        tried = [osp.join(self.data_root, p['image'].format(sample_id))
                 for p in NYUD_PACKAGINGS.values()]
        raise FileNotFoundError(
            f'{type(self).__name__}: cannot tell the packaging of '
            f'{self.data_root}: none of {tried} exists (id {sample_id!r} of '
            f'{self.split_file()})')

    def sample_info(self, sample_id: str) -> dict:
        """Image and label files of one id.

        Returns:
            dict: ``img_path``, ``seg_map_path`` and ``ann_info``.
        """
        if self.packaging is None:
            self.packaging = self._detect_packaging(sample_id)
        layout = NYUD_PACKAGINGS[self.packaging]
        root = self.data_root
        ann_info = {}
        for task in self.TASKS:
            pattern, reader = layout[task]
            ann = dict(path=osp.join(root, pattern.format(sample_id)),
                       reader=reader)
            if task == 'semseg':
                ann['num_classes'] = len(NYU40_CLASSES)
            elif task == 'normals':
                ann['min_norm'] = self.normals_min_norm
            ann_info[task] = ann
        return dict(
            img_path=osp.join(root, layout['image'].format(sample_id)),
            seg_map_path=ann_info['semseg']['path']
            if 'semseg' in self.tasks else None,
            ann_info=ann_info)
