# NYUD-v2 multi-task: semseg (40 classes), depth, normals, edge.
# Training protocol of the InvPT / MLoRE line: random scale
# [0.5, 2.0] (depth divided by the scale), random crop 448x576 with
# cat_max_ratio 0.75, horizontal flip (normals x negated), photometric
# distortion; the data preprocessor pads each batch (the normalised image
# with 0 = the mean colour, as at test time; every label with its ignore
# value). Test: native resolution (425x560), no resize; the model's data
# preprocessor pads to the training size (configs/fgmoe_nyud.py).
# `data_root` may be the InvPT `NYUDv2/` or the MTL-PyTorch `NYUD_MT/` folder
# (the packaging is detected). To train on a task subset, set `tasks` on every
# dataloader's dataset (e.g. `train_dataloader.dataset.tasks`) as well.
dataset_type = 'NYUDv2MultiTaskDataset'
data_root = 'data/NYUDv2'
tasks = ['semseg', 'depth', 'normals', 'edge']
crop_size = (448, 576)
scale_ratio_range = (0.5, 2.0)
# Labels are read by PIL, which ignores EXIF orientation: so is the image.
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(type='MultiTaskRandomResize', ratio_range=scale_ratio_range),
    dict(type='MultiTaskRandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='MultiTaskRandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackMultiTaskInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(type='PackMultiTaskInputs'),
]
# Flip test-time augmentation (python tools/test.py ... --tta): the image is
# flipped before the labels are loaded, the model flips predictions back.
tta_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='TestTimeAug',
         transforms=[[
             dict(type='MultiTaskRandomFlip', prob=0., direction='horizontal'),
             dict(type='MultiTaskRandomFlip', prob=1., direction='horizontal')
         ], [dict(type='LoadMultiTaskAnnotations')],
                     [dict(type='PackMultiTaskInputs')]])
]
# The crop's class-ratio rule reads the semseg map: `guide_tasks` loads it for
# the crop only when semseg is not among `tasks` (a single-task baseline then
# crops by the same rule as the multi-task run); it is never trained.
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        tasks=tasks,
        guide_tasks=['semseg'],
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='val',
        tasks=tasks,
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# Validation during training counts edge matches with our exact backend
# (~0.1 s per image); the test keeps pyEdgeEval, the reference (~10-30 s per
# image at 99 thresholds: hours per pass over the val split).
val_evaluator = dict(type='MultiTaskMetric',
                     edge_max_dist=0.011,
                     edge_backend='fast')
test_evaluator = dict(type='MultiTaskMetric', edge_max_dist=0.011)
