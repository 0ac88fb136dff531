# Copyright (c) mmfgmoe contributors. All rights reserved.
import os.path as osp
from typing import Dict, Optional, Sequence

from mmseg.registry import DATASETS
from ..utils import TASK_SPECS
from .base_multitask import BaseMultiTaskDataset, voc_colormap

__all__ = ['PascalContextMultiTaskDataset', 'VOC_CLASSES',
           'HUMAN_PART_CLASSES', 'HUMAN_PART_GROUPS',
           'NORMALS_VALID_CONTEXT_CLASSES']

VOC_CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat',
               'bottle', 'bus', 'car', 'cat', 'chair', 'cow', 'diningtable',
               'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep',
               'sofa', 'train', 'tvmonitor')

HUMAN_PART_CLASSES = ('background', 'head', 'torso', 'upper arm',
                      'lower arm', 'upper leg', 'lower leg')

# The 24 PASCAL-Part person part names grouped into the 6 parts used by the
# multi-task PASCAL-Context protocol (ASTMT / MTL-PyTorch / ATRC,
# ``HUMAN_PART[6]``): head, torso, upper arm, lower arm (with hand), upper
# leg, lower leg (with foot).
HUMAN_PART_GROUPS: Dict[str, int] = {
    'hair': 1, 'head': 1, 'lear': 1, 'lebrow': 1, 'leye': 1, 'mouth': 1,
    'nose': 1, 'rear': 1, 'rebrow': 1, 'reye': 1,
    'neck': 2, 'torso': 2,
    'luarm': 3, 'ruarm': 3,
    'llarm': 4, 'lhand': 4, 'rlarm': 4, 'rhand': 4,
    'luleg': 5, 'ruleg': 5,
    'llleg': 6, 'lfoot': 6, 'rlleg': 6, 'rfoot': 6,
}

# PASCAL VOC class index of persons in PASCAL-Part files.
PERSON_CLASS_IND = VOC_CLASSES.index('person')

# PASCAL-Context (459-label ``LabelMap``) classes whose distilled normals are
# kept: the class names present in both the NYU and the Context class lists
# (``nyu_classes.json`` / ``context_classes.json`` of MTL-PyTorch's db_info,
# 'unknown' excluded) plus 'tvmonitor', as the reference loaders do.
NORMALS_VALID_CONTEXT_CLASSES: Dict[str, int] = {
    'air conditioner': 3, 'antenna': 4, 'ashtray': 6, 'bag': 9, 'ball': 10,
    'balloon': 11, 'barrel': 13, 'basket': 15, 'bathtub': 17, 'bed': 18,
    'bench': 22, 'bicycle': 23, 'blackboard': 29, 'board': 30, 'book': 33,
    'bottle': 34, 'bowl': 36, 'box': 37, 'bracelet': 38, 'brick': 39,
    'broom': 41, 'bucket': 43, 'cabinet': 46, 'cake': 49, 'calculator': 50,
    'calendar': 51, 'camera': 53, 'can': 55, 'candle': 56, 'car': 59,
    'cart': 61, 'case': 62, 'cat': 65, 'cd': 66, 'ceiling': 68,
    'cell phone': 69, 'chair': 72, 'chessboard': 73, 'clock': 78,
    'coffee machine': 83, 'comb': 84, 'computer': 85, 'cone': 87,
    'container': 88, 'corkscrew': 95, 'counter': 96, 'crate': 101,
    'cup': 104, 'curtain': 105, 'cutting board': 107, 'dishwasher': 111,
    'dog': 113, 'door': 115, 'drum': 122, 'duck': 124, 'envelope': 135,
    'fan': 141, 'faucet': 142, 'fax machine': 143, 'fire extinguisher': 146,
    'fish tank': 150, 'flag': 154, 'flashlight': 157, 'floor': 158,
    'flower': 159, 'fork': 165, 'fruit': 172, 'furnace': 174, 'glass': 181,
    'globe': 183, 'glove': 184, 'guitar': 191, 'hammer': 193, 'handle': 195,
    'hanger': 197, 'hat': 199, 'heater': 202, 'ipod': 213,
    'ironing board': 215, 'jar': 216, 'key': 219, 'keyboard': 220,
    'knife': 223, 'ladder': 225, 'laptop': 228, 'lid': 230, 'light': 232,
    'light bulb': 233, 'lock': 238, 'machine': 239, 'map': 242, 'mask': 243,
    'mattress': 246, 'microphone': 250, 'microwave': 251, 'mirror': 252,
    'money': 255, 'mouse': 260, 'mouse pad': 261, 'napkin': 263, 'oven': 269,
    'pan': 272, 'paper': 273, 'paper cutter': 275, 'pen': 281, 'pencil': 283,
    'person': 284, 'photo': 285, 'piano': 286, 'picture': 287, 'pig': 288,
    'pillow': 290, 'pipe': 291, 'pitcher': 292, 'plant': 293, 'plate': 295,
    'pool table': 304, 'pot': 307, 'printer': 309, 'projector': 310,
    'radiator': 314, 'radio': 315, 'range hood': 319, 'remote control': 323,
    'rope': 329, 'rug': 330, 'ruler': 331, 'scale': 336, 'sculpture': 342,
    'sewing machine': 345, 'shelves': 349, 'shoe': 350, 'shopping cart': 351,
    'shovel': 352, 'sign': 355, 'sink': 357, 'sofa': 368, 'spatula': 370,
    'speaker': 371, 'spoon': 374, 'stapler': 379, 'stick': 380, 'stool': 383,
    'stove': 384, 'table': 397, 'tape': 401, 'telephone': 403, 'tent': 405,
    'toaster': 407, 'toilet': 408, 'toothbrush': 411, 'towel': 412,
    'toy': 413, 'toy car': 414, 'trampoline': 417, 'tray': 419,
    'tricycle': 421, 'trophy': 423, 'tvmonitor': 427, 'typewriter': 429,
    'umbrella': 430, 'vacuum cleaner': 432, 'wall': 440, 'wallet': 441,
    'wardrobe': 442, 'washing machine': 443, 'watch': 444,
    'water dispenser': 446, 'window': 454, 'wire': 457,
}


@DATASETS.register_module()
class PascalContextMultiTaskDataset(BaseMultiTaskDataset):
    """PASCAL-Context multi-task (``PASCAL_MT/``; 4998 train / 5105 val).

    Files (README, "Data"): ``ImageSets/Context/{split}.txt``,
    ``JPEGImages/<id>.jpg``; semseg ``semseg/VOC12/<id>.png`` if present
    else ``semseg/pascal-context/<id>.png`` (21 classes, 255 ignore); human
    parts from the PASCAL-Part struct ``human_parts/<id>.mat`` (person
    objects only, 24 part names -> :data:`HUMAN_PART_GROUPS`; an image
    without person parts is all ignore); saliency ``sal_distill/<id>.png``
    (``v / 255 > saliency_threshold``); normals ``normals_distill/<id>.png``
    (n = 2v/255 - 1) kept only on :data:`NORMALS_VALID_CONTEXT_CLASSES` of
    the ``LabelMap``; edges = boundaries of ``pascal-context/trainval/
    <id>.mat`` key ``LabelMap`` (|Laplacian| > 0, thinned).

    Args:
        data_root (str): The ``PASCAL_MT/`` folder.
        split (str): 'train' or 'val'. Defaults to 'train'.
        tasks (Sequence[str], optional): Subset of ``('semseg',
            'human_parts', 'saliency', 'normals', 'edge')``. Defaults to all.
        saliency_threshold (float): Defaults to 0.5.
        normals_min_norm (float): Decoded normals shorter than this are
            invalid. Defaults to 0.5.
        **kwargs: :class:`BaseMultiTaskDataset` / ``BaseSegDataset`` args.
    """
    TASKS = ('semseg', 'human_parts', 'saliency', 'normals', 'edge')
    METAINFO = dict(
        classes=VOC_CLASSES,
        palette=voc_colormap(len(VOC_CLASSES)),
        human_parts_classes=HUMAN_PART_CLASSES,
        human_parts_palette=voc_colormap(len(HUMAN_PART_CLASSES)))

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 tasks: Optional[Sequence[str]] = None,
                 saliency_threshold: float = 0.5,
                 normals_min_norm: float = 0.5,
                 **kwargs) -> None:
        self.saliency_threshold = saliency_threshold
        self.normals_min_norm = normals_min_norm
        super().__init__(data_root=data_root, split=split, tasks=tasks,
                         **kwargs)

    def split_file(self) -> str:
        """``ImageSets/Context/<split>.txt``."""
        return osp.join(self.data_root, 'ImageSets', 'Context',
                        f'{self.split}.txt')

    def _semseg_path(self, sample_id: str) -> str:
        candidates = [
            osp.join(self.data_root, 'semseg', sub, f'{sample_id}.png')
            for sub in ('VOC12', 'pascal-context')
        ]
        for path in candidates:
            if osp.isfile(path):
                return path
        if 'semseg' not in self.loaded_tasks:
            return candidates[0]
        raise FileNotFoundError(
            f'{type(self).__name__}: semseg file not found: neither '
            f'{candidates[0]} nor {candidates[1]} exists (id {sample_id!r} '
            f'listed in {self.split_file()})')

    def sample_info(self, sample_id: str) -> dict:
        """Image and label files of one id.

        Returns:
            dict: ``img_path``, ``seg_map_path`` and ``ann_info``.
        """
        root = self.data_root
        labelmap = osp.join(root, 'pascal-context', 'trainval',
                            f'{sample_id}.mat')
        semseg = self._semseg_path(sample_id)
        ann_info = dict(
            semseg=dict(path=semseg, reader='voc_semseg_png',
                        num_classes=len(VOC_CLASSES)),
            human_parts=dict(
                path=osp.join(root, 'human_parts', f'{sample_id}.mat'),
                reader='pascal_parts_mat',
                part_map=dict(HUMAN_PART_GROUPS),
                person_class_ind=PERSON_CLASS_IND,
                fill_if_empty=TASK_SPECS['human_parts'].pad_value),
            saliency=dict(
                path=osp.join(root, 'sal_distill', f'{sample_id}.png'),
                reader='saliency_png',
                threshold=self.saliency_threshold),
            normals=dict(
                path=osp.join(root, 'normals_distill', f'{sample_id}.png'),
                reader='normals_png',
                min_norm=self.normals_min_norm,
                labelmap_path=labelmap,
                valid_labels=sorted(NORMALS_VALID_CONTEXT_CLASSES.values())),
            edge=dict(path=labelmap, reader='edge_labelmap'))
        return dict(
            img_path=osp.join(root, 'JPEGImages', f'{sample_id}.jpg'),
            seg_map_path=semseg if 'semseg' in self.tasks else None,
            ann_info=ann_info)
