# Ablation: depth-wise 3x3 + point-wise convolution instead of the
# deformable token mixer.
_base_ = ['../fgmoe_nyud.py']
model = dict(decode_head=dict(
    mixer_cfg=dict(_delete_=True, type='DepthwiseConvMixer', kernel_size=3)))
