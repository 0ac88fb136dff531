# SynthRoom in the PASCAL-Context layout (PASCAL_MT/): the embedded
# default data set (README, "The demo"), same dataset class and protocol as the
# real one, crop sized for 240x320 images (multiple of 16). Generate it with
#   python tools/dataset_converters/synth_room.py data/synth_room \
#       --layout pascal --num-train 1000 --num-val 200 \
#       --height 240 --width 320 --seed 0
_base_ = ['./pascal_context.py']
data_root = 'data/synth_room/PASCAL_MT'
crop_size = (224, 288)
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(
        type='MultiTaskRandomResize',
        ratio_range={{_base_.scale_ratio_range}}),
    dict(type='MultiTaskRandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='IgnoreEmptyLabels', tasks=['human_parts']),
    dict(type='MultiTaskRandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackMultiTaskInputs'),
]
train_dataloader = dict(
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
