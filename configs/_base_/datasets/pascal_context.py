# PASCAL-Context multi-task: semseg (21 classes), human parts (6 + bg),
# saliency, normals (distilled), edge.
# Training protocol of the InvPT / MLoRE line: random scale
# [0.5, 2.0], random crop 512x512 with cat_max_ratio 0.75, horizontal flip
# (normals x negated), photometric distortion; the data preprocessor pads each
# batch (the normalised image with 0 = the mean colour, as at test time;
# every label with its ignore value).
# Test: native resolution (<= 500 px), no resize; the model's data
# preprocessor pads to the training size (configs/fgmoe_pascal.py).
# A human-part map without any part pixel is all-ignore, as InvPT's
# `AddIgnoreRegions`: per image at test time, per crop in training.
# To train on a task subset, set `tasks` on every dataloader's dataset.
dataset_type = 'PascalContextMultiTaskDataset'
data_root = 'data/PASCAL_MT'
tasks = ['semseg', 'human_parts', 'saliency', 'normals', 'edge']
crop_size = (512, 512)
scale_ratio_range = (0.5, 2.0)
# Labels are read by PIL, which ignores EXIF orientation: so is the image.
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(type='MultiTaskRandomResize', ratio_range=scale_ratio_range),
    dict(type='MultiTaskRandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='IgnoreEmptyLabels', tasks=['human_parts']),
    dict(type='MultiTaskRandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackMultiTaskInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(type='IgnoreEmptyLabels', tasks=['human_parts']),
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
                     [dict(type='IgnoreEmptyLabels', tasks=['human_parts'])],
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
                     edge_max_dist=0.0075,
                     edge_backend='fast')
test_evaluator = dict(type='MultiTaskMetric', edge_max_dist=0.0075)
