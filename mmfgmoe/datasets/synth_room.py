# Copyright (c) mmfgmoe contributors. All rights reserved.
"""SynthRoom: procedural indoor scenes with physically consistent labels.

No real data set or pretrained weight can be downloaded on the machines this
package is developed on, so it ships a generator whose labels all come from
the same ray hits and therefore agree with each other (README, "The demo"):

* A pinhole camera (OpenCV frame: x right, y down, z forward) looks into a
  box-shaped room (floor, walls, ceiling) holding furniture made of boxes,
  spheres, vertical cylinders and capsules, flat things on the walls
  (pictures, windows, doors, a television) and, optionally, jointed persons
  made of primitives.
* Rendering is vectorised numpy ray casting. Each primitive is intersected
  only with the rays of its projected bounding rectangle, so a 240x320 image
  renders in a few milliseconds.
* From the nearest hit per pixel come: depth in metres (z-buffer along the
  optical axis), analytic surface normals (camera frame, unit length, facing
  the camera), NYU-40 semantic ids, VOC-21 ids and PASCAL-Context-459 ids per
  primitive, edges (label boundaries union depth discontinuities, one pixel
  wide), saliency (objects vs. room), human parts (the person's primitives).
* RGB = per-object albedo x procedural texture x Lambert shading from a
  random light + ambient + uniform sensor noise. Everything is drawn from
  ``numpy.random.default_rng((seed, split, index))``: one image does not
  depend on how many others are generated.

The result is written in the real on-disk layouts (README, "Data") so the very
same dataset classes read it: ``NYUDv2/`` (InvPT packaging), ``NYUD_MT/``
(MTL-PyTorch packaging) and ``PASCAL_MT/`` (including PASCAL-Part ``.mat``
files with the ``anno -> objects(class, class_ind, mask, parts(part_name,
mask))`` struct layout and PASCAL-Context ``LabelMap`` files).

Our choices (the real data sets say nothing about them): the room, camera and
lighting ranges in :class:`SynthRoomParams`, the class mapping tables below,
the convention that normals point towards the camera, and the fraction of
depth pixels dropped as invalid (Kinect-like holes). The furniture and person
shapes (dimensions in metres in ``_add_furniture`` / ``_add_person``) are the
scenes' content, like mesh data; the knobs meant to be tuned are the fields of
:class:`SynthRoomParams`.
"""
import functools
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import scipy.io as sio

from .pascal_context import VOC_CLASSES
from .transforms.loading import encode_normals_png

__all__ = [
    'SynthRoomParams', 'SynthRoomSample', 'render_synth_room',
    'generate_synth_room', 'benchmark_synth_room', 'LAYOUTS',
    'SEMANTIC_MATERIALS'
]

LAYOUTS = ('nyud', 'nyud_mt', 'pascal')
# Folder each layout is written to under ``out_dir``.
LAYOUT_ROOTS = {'nyud': 'NYUDv2', 'nyud_mt': 'NYUD_MT', 'pascal': 'PASCAL_MT'}
# Stream ids that keep the train and val images independent of each other.
_SPLIT_STREAM = {'train': 0, 'val': 1}

# ----------------------------------------------------------------------------
# Class tables. One "material" per kind of surface; each maps to its NYU-40
# id (0 = unlabeled), VOC-21 id (0 = background), PASCAL-Context-459 id
# (the ``LabelMap`` ids of ``pascal-context/trainval/*.mat``), a base albedo
# (RGB in [0, 1]) and whether it is salient (an object, not room structure).
# ----------------------------------------------------------------------------
SEMANTIC_MATERIALS: Dict[str, Tuple[int, int, int, Tuple[float, float, float],
                                    bool]] = {
    # name:        (nyu40, voc21, context459, albedo, salient)
    'wall': (1, 0, 440, (0.80, 0.76, 0.68), False),
    'floor': (2, 0, 158, (0.55, 0.38, 0.24), False),
    'ceiling': (22, 0, 68, (0.92, 0.92, 0.90), False),
    'cabinet': (3, 0, 46, (0.60, 0.45, 0.30), True),
    'bed': (4, 0, 18, (0.35, 0.45, 0.70), True),
    'chair': (5, 9, 72, (0.70, 0.25, 0.20), True),
    'sofa': (6, 18, 368, (0.30, 0.55, 0.35), True),
    'table': (7, 11, 397, (0.65, 0.50, 0.32), True),
    'door': (8, 0, 115, (0.50, 0.32, 0.18), False),
    'window': (9, 0, 454, (0.70, 0.85, 0.95), False),
    'bookshelf': (10, 0, 349, (0.45, 0.30, 0.20), True),
    'picture': (11, 0, 287, (0.85, 0.65, 0.30), False),
    'pillow': (18, 0, 290, (0.90, 0.88, 0.80), True),
    'box': (29, 0, 37, (0.75, 0.62, 0.40), True),
    'television': (25, 20, 427, (0.08, 0.08, 0.10), True),
    'person': (31, 15, 284, (0.85, 0.62, 0.50), True),
    'lamp': (35, 0, 232, (0.95, 0.90, 0.60), True),
    'plant': (40, 16, 308, (0.20, 0.55, 0.20), True),
    'ball': (40, 0, 10, (0.85, 0.20, 0.55), True),
    'clutter': (0, 0, 431, (0.50, 0.50, 0.50), True),
}

# PASCAL-Part person part names drawn by the generator (a subset of the 24
# real ones: the generator's person has no face details).
PERSON_PARTS = ('head', 'neck', 'torso', 'luarm', 'llarm', 'ruarm', 'rlarm',
                'lhand', 'rhand', 'luleg', 'llleg', 'ruleg', 'rlleg',
                'lfoot', 'rfoot')

# Primitive kinds.
_BOX, _SPHERE, _CYLINDER, _CAPSULE = 0, 1, 2, 3


@dataclass(frozen=True)
class SynthRoomParams:
    """Ranges the scene sampler draws from (metres, radians, unit-less).

    Args:
        room_width (tuple): Room extent along x. Defaults to (4.0, 7.0).
        room_depth (tuple): Room extent along z (away from the camera).
            Defaults to (5.0, 9.0).
        room_height (tuple): Floor-to-ceiling height. Defaults to (2.6, 3.2).
        camera_height (tuple): Camera height above the floor.
            Defaults to (1.1, 1.7).
        camera_pitch (tuple): Downward tilt. Defaults to (0.05, 0.35).
        camera_yaw (tuple): Rotation about the vertical axis.
            Defaults to (-0.3, 0.3).
        focal_ratio (float): Focal length / image width (NYU's Kinect is
            about 518 / 640). Defaults to 0.81.
        num_objects (tuple): Inclusive range of furniture pieces.
            Defaults to (3, 7).
        num_wall_items (tuple): Inclusive range of pictures / windows /
            doors / televisions. Defaults to (1, 3).
        person_prob (float): Probability that a scene holds persons.
            Defaults to 0.5.
        person_prob_pascal (float): The same for the PASCAL layout, whose
            human-parts task needs persons. Defaults to 0.8.
        person_fov (float): Persons are placed within this horizontal angle
            (radians) around the viewing direction. Defaults to 0.8.
        max_persons (int): Most persons in one scene. Defaults to 2.
        min_object_distance (float): Nearest an object is placed to the
            camera along z. Defaults to 1.6.
        ambient (float): Ambient light level. Defaults to 0.35.
        diffuse (float): Lambert light level. Defaults to 0.75.
        noise_std (float): Sensor noise std on [0, 1] RGB (zero-mean
            uniform noise). Defaults to 0.02.
        albedo_jitter (float): Per-object albedo perturbation.
            Defaults to 0.12.
        texture_amplitude (float): Strength of the procedural texture.
            Defaults to 0.15.
        depth_edge_ratio (float): Relative depth jump between neighbours
            marked as an edge. Defaults to 0.08.
        depth_hole_prob (float): Probability of dropping an invalid-depth
            rectangle (Kinect hole) into an image. Defaults to 0.5.
        depth_hole_size (float): Largest hole side as a fraction of the
            image side. Defaults to 0.12.
    """
    room_width: Tuple[float, float] = (4.0, 7.0)
    room_depth: Tuple[float, float] = (5.0, 9.0)
    room_height: Tuple[float, float] = (2.6, 3.2)
    camera_height: Tuple[float, float] = (1.1, 1.7)
    camera_pitch: Tuple[float, float] = (0.05, 0.35)
    camera_yaw: Tuple[float, float] = (-0.3, 0.3)
    focal_ratio: float = 0.81
    num_objects: Tuple[int, int] = (3, 7)
    num_wall_items: Tuple[int, int] = (1, 3)
    person_prob: float = 0.5
    person_prob_pascal: float = 0.8
    person_fov: float = 0.8
    max_persons: int = 2
    min_object_distance: float = 1.6
    ambient: float = 0.35
    diffuse: float = 0.75
    noise_std: float = 0.02
    albedo_jitter: float = 0.12
    texture_amplitude: float = 0.15
    depth_edge_ratio: float = 0.08
    depth_hole_prob: float = 0.5
    depth_hole_size: float = 0.12


@dataclass
class SynthRoomSample:
    """One rendered image and all its labels.

    Attributes:
        image (np.ndarray): uint8 [H, W, 3] RGB.
        depth (np.ndarray): float32 [H, W] metres, 0 = invalid.
        normals (np.ndarray): float32 [H, W, 3] unit camera-frame normals.
        nyu40 (np.ndarray): uint8 [H, W], 0 = unlabeled, 1..40.
        voc (np.ndarray): uint8 [H, W] VOC-21 ids (0 = background).
        context (np.ndarray): uint16 [H, W] PASCAL-Context-459 ids.
        edge (np.ndarray): uint8 [H, W] 0/1.
        saliency (np.ndarray): uint8 [H, W] 0/1.
        objects (list[dict]): VOC objects for the PASCAL-Part file: ``cls``
            (str), ``class_ind`` (int), ``mask`` (uint8 [H, W]) and ``parts``
            (list of (part_name, uint8 mask)).
    """
    image: np.ndarray
    depth: np.ndarray
    normals: np.ndarray
    nyu40: np.ndarray
    voc: np.ndarray
    context: np.ndarray
    edge: np.ndarray
    saliency: np.ndarray
    objects: List[dict]


class _Scene:
    """A list of primitives with their material, object and part ids."""

    def __init__(self) -> None:
        self.prims: List[tuple] = []  # (kind, params tuple)
        self.material: List[str] = []
        self.object_id: List[int] = []  # -1 = room structure
        self.part: List[str] = []  # '' = not a person part
        self.albedo: List[np.ndarray] = []
        self.num_objects = 0

    def new_object(self) -> int:
        self.num_objects += 1
        return self.num_objects - 1

    def add(self, kind: int, params: tuple, material: str, obj: int,
            albedo: np.ndarray, part: str = '') -> None:
        self.prims.append((kind, params))
        self.material.append(material)
        self.object_id.append(obj)
        self.part.append(part)
        self.albedo.append(albedo)


# ----------------------------------------------------------------------------
# Ray-primitive intersections. Every function takes the ray origin ``o``
# (3 floats, world frame) and unit directions ``d`` (3 arrays of one shape)
# and returns ``t`` (distance along the ray, inf where missed) and the world
# normal (3 arrays).
# ----------------------------------------------------------------------------
_Rays = Sequence[np.ndarray]  # x, y, z components, each [h, w]
_Hit = Tuple[np.ndarray, Tuple[np.ndarray, np.ndarray, np.ndarray]]


def _safe_inv(x: np.ndarray) -> np.ndarray:
    """1 / x with +-inf for zero components (the slab tests handle inf)."""
    with np.errstate(divide='ignore'):
        return np.reciprocal(x)


def _hit_box(o: np.ndarray, d: _Rays, params: tuple) -> _Hit:
    """Box: centre ``c``, half extents ``e``, rotated by ``yaw`` about y."""
    c, e, yaw = params
    cs, sn = np.float32(np.cos(yaw)), np.float32(np.sin(yaw))
    ox, oy, oz = o[0] - c[0], o[1] - c[1], o[2] - c[2]
    # world -> local: R^T v with R the rotation about y by yaw
    lo = (cs * ox - sn * oz, oy, sn * ox + cs * oz)
    ld = (cs * d[0] - sn * d[2], d[1], sn * d[0] + cs * d[2])
    tnear = None
    tfar = None
    axis = None
    for k in range(3):
        inv = _safe_inv(ld[k])
        t1 = (-e[k] - lo[k]) * inv
        t2 = (e[k] - lo[k]) * inv
        tmin = np.minimum(t1, t2)
        tmax = np.maximum(t1, t2)
        if tnear is None:
            tnear, tfar = tmin, tmax
            axis = np.zeros(tmin.shape, np.int8)
        else:
            bigger = tmin > tnear
            axis[bigger] = k
            tnear = np.maximum(tnear, tmin)
            tfar = np.minimum(tfar, tmax)
    hit = (tnear <= tfar) & (tnear > 0)
    t = np.where(hit, tnear, np.inf).astype(np.float32)
    ln = [np.where(axis == k, -np.sign(ld[k]), 0).astype(np.float32)
          for k in range(3)]
    # local -> world
    n = (cs * ln[0] + sn * ln[2], ln[1], -sn * ln[0] + cs * ln[2])
    return t, n


def _hit_sphere(o: np.ndarray, d: _Rays, params: tuple) -> _Hit:
    c, r = params
    ox, oy, oz = o[0] - c[0], o[1] - c[1], o[2] - c[2]
    b = ox * d[0] + oy * d[1] + oz * d[2]
    cc = ox * ox + oy * oy + oz * oz - r * r
    h = b * b - cc
    with np.errstate(invalid='ignore'):
        t = -b - np.sqrt(h)
    hit = (h > 0) & (t > 0)
    t = np.where(hit, t, np.inf).astype(np.float32)
    tt = np.where(hit, t, 0)
    n = ((ox + tt * d[0]) / r, (oy + tt * d[1]) / r, (oz + tt * d[2]) / r)
    return t, n


def _hit_cylinder(o: np.ndarray, d: _Rays, params: tuple) -> _Hit:
    """Vertical cylinder: base centre ``c`` (on its bottom), radius, height."""
    c, r, height = params
    ox, oy, oz = o[0] - c[0], o[1] - c[1], o[2] - c[2]
    a = d[0] * d[0] + d[2] * d[2]
    b = ox * d[0] + oz * d[2]
    cc = ox * ox + oz * oz - r * r
    h = b * b - a * cc
    with np.errstate(invalid='ignore', divide='ignore'):
        ts = (-b - np.sqrt(h)) / a
    y = oy + ts * d[1]
    side = (h > 0) & (ts > 0) & (y >= 0) & (y <= height)
    ts = np.where(side, ts, np.inf)
    # top cap, seen from above
    tc = (height - oy) * _safe_inv(d[1])
    px, pz = ox + tc * d[0], oz + tc * d[2]
    cap = (tc > 0) & (px * px + pz * pz <= r * r) & (d[1] < 0)
    tc = np.where(cap, tc, np.inf)
    use_cap = tc < ts
    t = np.minimum(ts, tc).astype(np.float32)
    tt = np.where(np.isfinite(t), t, 0)
    nx = np.where(use_cap, 0, (ox + tt * d[0]) / r)
    nz = np.where(use_cap, 0, (oz + tt * d[2]) / r)
    ny = np.where(use_cap, 1, 0)
    return t, (nx.astype(np.float32), ny.astype(np.float32),
               nz.astype(np.float32))


def _hit_capsule(o: np.ndarray, d: _Rays, params: tuple) -> _Hit:
    """Capsule (segment ``a``-``b`` swept by a sphere of radius ``r``)."""
    pa, pb, r = params
    ba = pb - pa
    oa = (o[0] - pa[0], o[1] - pa[1], o[2] - pa[2])
    baba = float(ba @ ba)
    bard = ba[0] * d[0] + ba[1] * d[1] + ba[2] * d[2]
    baoa = float(ba @ np.asarray(oa, np.float32))
    rdoa = oa[0] * d[0] + oa[1] * d[1] + oa[2] * d[2]
    oaoa = float(np.dot(oa, oa))
    a = baba - bard * bard
    b = baba * rdoa - baoa * bard
    c = baba * oaoa - baoa * baoa - r * r * baba
    h = b * b - a * c
    with np.errstate(invalid='ignore', divide='ignore'):
        t_body = (-b - np.sqrt(h)) / a
    y = baoa + t_body * bard
    body = (h >= 0) & (y > 0) & (y < baba) & (t_body > 0)
    # end spheres
    t = np.where(body, t_body, np.inf)
    for end in (pa, pb):
        ts, _ = _hit_sphere(o, d, (end, r))
        t = np.minimum(t, ts)
    t = t.astype(np.float32)
    tt = np.where(np.isfinite(t), t, 0)
    px, py, pz = (o[0] + tt * d[0] - pa[0], o[1] + tt * d[1] - pa[1],
                  o[2] + tt * d[2] - pa[2])
    s = np.clip((px * ba[0] + py * ba[1] + pz * ba[2]) / baba, 0, 1)
    n = ((px - s * ba[0]) / r, (py - s * ba[1]) / r, (pz - s * ba[2]) / r)
    return t, n


_HIT = {_BOX: _hit_box, _SPHERE: _hit_sphere, _CYLINDER: _hit_cylinder,
        _CAPSULE: _hit_capsule}


def _bounding_sphere(kind: int, params: tuple) -> Tuple[np.ndarray, float]:
    if kind == _BOX:
        c, e, _ = params
        return np.asarray(c), float(np.linalg.norm(e))
    if kind == _SPHERE:
        return np.asarray(params[0]), float(params[1])
    if kind == _CYLINDER:
        c, r, height = params
        centre = np.asarray(c) + np.array([0, height / 2, 0])
        return centre, float(np.hypot(r, height / 2))
    pa, pb, r = params
    return (pa + pb) / 2, float(np.linalg.norm(pb - pa) / 2 + r)


# ----------------------------------------------------------------------------
# Scene sampling
# ----------------------------------------------------------------------------
def _albedo(rng: np.random.Generator, material: str,
            params: SynthRoomParams) -> np.ndarray:
    base = np.asarray(SEMANTIC_MATERIALS[material][3], np.float32)
    jitter = rng.uniform(-params.albedo_jitter, params.albedo_jitter, 3)
    return np.clip(base + jitter.astype(np.float32), 0.02, 1.0)


def _v(*xs) -> np.ndarray:
    return np.asarray(xs, np.float32)


def _add_furniture(scene: _Scene, rng: np.random.Generator, kind: str,
                   x: float, z: float, yaw: float,
                   params: SynthRoomParams) -> float:
    """Add one piece of furniture standing on the floor at (x, z).

    Returns:
        float: The radius of its footprint (for placement).
    """
    obj = scene.new_object()
    cs, sn = np.cos(yaw), np.sin(yaw)

    def at(dx, y, dz):  # local offset -> world point
        return _v(x + cs * dx + sn * dz, y, z - sn * dx + cs * dz)

    def box(material, dx, y, dz, ex, ey, ez, albedo):
        scene.add(_BOX, (at(dx, y, dz), _v(ex, ey, ez), yaw), material, obj,
                  albedo)

    if kind == 'table':
        w, dpt, h = rng.uniform(0.5, 0.9), rng.uniform(0.4, 0.7), \
            rng.uniform(0.65, 0.8)
        alb = _albedo(rng, 'table', params)
        box('table', 0, h - 0.03, 0, w, 0.03, dpt, alb)
        for sx in (-1, 1):
            for sz in (-1, 1):
                box('table', sx * (w - 0.05), (h - 0.06) / 2,
                    sz * (dpt - 0.05), 0.03, (h - 0.06) / 2, 0.03, alb)
        return float(np.hypot(w, dpt))
    if kind == 'chair':
        w, h = rng.uniform(0.2, 0.28), rng.uniform(0.42, 0.5)
        alb = _albedo(rng, 'chair', params)
        box('chair', 0, h, 0, w, 0.03, w, alb)
        box('chair', 0, h + 0.25, w - 0.02, w, 0.25, 0.02, alb)
        for sx in (-1, 1):
            for sz in (-1, 1):
                box('chair', sx * (w - 0.03), h / 2, sz * (w - 0.03), 0.02,
                    h / 2, 0.02, alb)
        return float(w * 1.5)
    if kind == 'sofa':
        w, dpt = rng.uniform(0.8, 1.2), rng.uniform(0.4, 0.5)
        alb = _albedo(rng, 'sofa', params)
        box('sofa', 0, 0.22, 0, w, 0.22, dpt, alb)
        box('sofa', 0, 0.5, dpt - 0.1, w, 0.3, 0.1, alb)
        for sx in (-1, 1):
            box('sofa', sx * (w - 0.08), 0.35, 0, 0.08, 0.15, dpt, alb)
        if rng.random() < 0.7:
            scene.add(_BOX, (at(rng.uniform(-w / 2, w / 2), 0.55, dpt - 0.28),
                             _v(0.2, 0.12, 0.08), yaw), 'pillow', obj,
                      _albedo(rng, 'pillow', params))
        return float(np.hypot(w, dpt))
    if kind == 'bed':
        w, ln = rng.uniform(0.7, 0.9), rng.uniform(0.9, 1.0)
        box('bed', 0, 0.25, 0, w, 0.25, ln, _albedo(rng, 'bed', params))
        scene.add(_BOX, (at(0, 0.56, ln - 0.25), _v(w * 0.6, 0.07, 0.18),
                         yaw), 'pillow', obj, _albedo(rng, 'pillow', params))
        return float(np.hypot(w, ln))
    if kind in ('cabinet', 'bookshelf', 'box'):
        if kind == 'box':
            ex, ey, ez = rng.uniform(0.1, 0.3, 3)
        else:
            ex, ey, ez = (rng.uniform(0.3, 0.6), rng.uniform(0.4, 1.0),
                          rng.uniform(0.2, 0.3))
        box(kind, 0, ey, 0, ex, ey, ez, _albedo(rng, kind, params))
        return float(np.hypot(ex, ez))
    if kind == 'plant':
        r, h = rng.uniform(0.1, 0.18), rng.uniform(0.2, 0.4)
        scene.add(_CYLINDER, (_v(x, 0, z), r, h), 'plant', obj,
                  _albedo(rng, 'box', params))
        scene.add(_SPHERE, (_v(x, h + r * 1.6, z), r * 2), 'plant', obj,
                  _albedo(rng, 'plant', params))
        return float(r * 2)
    if kind == 'lamp':
        h, r = rng.uniform(1.2, 1.7), rng.uniform(0.15, 0.25)
        scene.add(_CYLINDER, (_v(x, 0, z), 0.025, h), 'lamp', obj,
                  _albedo(rng, 'clutter', params))
        scene.add(_SPHERE, (_v(x, h + r * 0.8, z), r), 'lamp', obj,
                  _albedo(rng, 'lamp', params))
        return float(r)
    if kind == 'ball':
        r = rng.uniform(0.1, 0.3)
        scene.add(_SPHERE, (_v(x, r, z), r), 'ball', obj,
                  _albedo(rng, 'ball', params))
        return float(r)
    # 'clutter': unlabeled stuff (NYU label 0 -> ignored)
    r, h = rng.uniform(0.1, 0.25), rng.uniform(0.2, 0.6)
    scene.add(_CYLINDER, (_v(x, 0, z), r, h), 'clutter', obj,
              _albedo(rng, 'clutter', params))
    return float(r)


_FURNITURE = ('table', 'chair', 'sofa', 'bed', 'cabinet', 'bookshelf', 'box',
              'plant', 'lamp', 'ball', 'clutter')


def _add_person(scene: _Scene, rng: np.random.Generator, x: float, z: float,
                yaw: float, params: SynthRoomParams) -> float:
    """A jointed person made of capsules and a sphere, standing at (x, z)."""
    obj = scene.new_object()
    skin = _albedo(rng, 'person', params)
    shirt = np.clip(rng.uniform(0.1, 0.9, 3).astype(np.float32), 0.05, 1)
    trousers = np.clip(rng.uniform(0.05, 0.6, 3).astype(np.float32), 0.05, 1)
    scale = rng.uniform(0.85, 1.05)
    cs, sn = np.cos(yaw), np.sin(yaw)

    def at(dx, y, dz):
        return _v(x + cs * dx + sn * dz, y * scale, z - sn * dx + cs * dz)

    def cap(part, p, q, r, alb):
        scene.add(_CAPSULE, (p, q, np.float32(r * scale)), 'person', obj,
                  alb, part)

    hip_y, shoulder_y = 0.95, 1.45
    swing = rng.uniform(-0.5, 0.5)
    for side, sgn in (('l', 1), ('r', -1)):
        a = swing * sgn
        hip = at(0.1 * sgn, hip_y, 0)
        knee = at(0.1 * sgn, hip_y - 0.45 * np.cos(a), 0.45 * np.sin(a))
        bend = rng.uniform(0, 0.6)
        ankle = knee + _v(0, -0.43 * np.cos(a - bend) * scale, 0) + \
            _v(sn * 0.43 * np.sin(a - bend), 0, cs * 0.43 * np.sin(a - bend))
        toe = ankle + _v(sn * 0.15, 0, cs * 0.15)
        cap(side + 'uleg', hip, knee, 0.075, trousers)
        cap(side + 'lleg', knee, ankle, 0.06, trousers)
        cap(side + 'foot', ankle, toe, 0.04, trousers * 0.5)
        b = -swing * sgn + rng.uniform(-0.3, 0.3)
        shoulder = at(0.2 * sgn, shoulder_y, 0)
        elbow = shoulder + _v(sn * 0.3 * np.sin(b), -0.3 * np.cos(b) * scale,
                              cs * 0.3 * np.sin(b))
        fb = b + rng.uniform(0, 1.2)
        wrist = elbow + _v(sn * 0.27 * np.sin(fb), -0.27 * np.cos(fb) * scale,
                           cs * 0.27 * np.sin(fb))
        cap(side + 'uarm', shoulder, elbow, 0.05, shirt)
        cap(side + 'larm', elbow, wrist, 0.04, skin)
        scene.add(_SPHERE, (wrist + (wrist - elbow) * 0.25,
                            np.float32(0.05 * scale)), 'person', obj, skin,
                  side + 'hand')
    cap('torso', at(0, hip_y + 0.05, 0), at(0, shoulder_y - 0.05, 0), 0.17,
        shirt)
    cap('neck', at(0, shoulder_y, 0), at(0, shoulder_y + 0.1, 0), 0.05, skin)
    scene.add(_SPHERE, (at(0, shoulder_y + 0.22, 0), np.float32(0.11 * scale)),
              'person', obj, skin, 'head')
    return 0.35


def _sample_scene(rng: np.random.Generator, params: SynthRoomParams,
                  with_persons: bool):
    """Draw a room, camera, light and primitives.

    Returns:
        tuple: (scene, room half width, room height, room depth, camera
        origin [3], camera axes (right, down, forward) [3, 3], light [3]).
    """
    scene = _Scene()
    W = rng.uniform(*params.room_width)
    D = rng.uniform(*params.room_depth)
    Hr = rng.uniform(*params.room_height)
    hw = W / 2
    cam = _v(rng.uniform(-hw * 0.3, hw * 0.3),
             rng.uniform(*params.camera_height), 0.05)
    pitch = rng.uniform(*params.camera_pitch)
    yaw = rng.uniform(*params.camera_yaw)
    fw = _v(np.sin(yaw) * np.cos(pitch), -np.sin(pitch),
            np.cos(yaw) * np.cos(pitch))
    right = _v(np.cos(yaw), 0, -np.sin(yaw))
    down = np.cross(right, fw).astype(np.float32)
    light = _v(rng.uniform(-0.6, 0.6), rng.uniform(0.6, 1.0),
               rng.uniform(-0.8, 0.2))
    light /= np.linalg.norm(light)

    # wall items: flat boxes on the back or side walls
    n_items = rng.integers(params.num_wall_items[0],
                           params.num_wall_items[1] + 1)
    for _ in range(n_items):
        material = rng.choice(['picture', 'window', 'door', 'television'])
        obj = scene.new_object()
        if material == 'door':
            ew, eh, yc = 0.45, 1.0, 1.0
        elif material == 'window':
            ew, eh, yc = rng.uniform(0.4, 0.9), rng.uniform(0.4, 0.7), 1.6
        else:
            ew, eh = rng.uniform(0.25, 0.6), rng.uniform(0.2, 0.4)
            yc = rng.uniform(1.2, 1.8)
        wall = rng.integers(3)
        if wall == 0:  # back wall
            c = _v(rng.uniform(-hw + ew, hw - ew), yc, D - 0.02)
            ext = _v(ew, eh, 0.03)
        else:
            sx = -1 if wall == 1 else 1
            c = _v(sx * (hw - 0.02), yc, rng.uniform(2.0, D - ew))
            ext = _v(0.03, eh, ew)
        scene.add(_BOX, (c, ext, 0.0), str(material), obj,
                  _albedo(rng, str(material), params))

    # furniture and persons on the floor, footprints not overlapping
    placed: List[Tuple[float, float, float]] = []
    n_obj = rng.integers(params.num_objects[0], params.num_objects[1] + 1)
    kinds = [str(k) for k in rng.choice(_FURNITURE, n_obj)]
    if with_persons:
        kinds = ['person'] * int(rng.integers(1, params.max_persons + 1)) + \
            kinds
    for kind in kinds:
        for _ in range(10):  # a few tries to find free floor space
            x = rng.uniform(-hw + 0.5, hw - 0.5)
            z = rng.uniform(params.min_object_distance, D - 0.6)
            if kind == 'person':
                # persons stand inside the horizontal field of view
                angle = yaw + rng.uniform(-0.5, 0.5) * params.person_fov
                x = float(np.clip(cam[0] + (z - cam[2]) * np.tan(angle),
                                  -hw + 0.5, hw - 0.5))
            if all(np.hypot(x - px, z - pz) > pr + 0.6
                   for px, pz, pr in placed):
                break
        else:
            continue
        oyaw = rng.uniform(-np.pi, np.pi)
        if kind == 'person':
            oyaw = np.arctan2(cam[0] - x, cam[2] - z) + rng.uniform(-1, 1)
            r = _add_person(scene, rng, x, z, oyaw, params)
        else:
            r = _add_furniture(scene, rng, kind, x, z, oyaw, params)
        placed.append((x, z, r))
    return scene, hw, Hr, D, cam, (right, down, fw), light


# ----------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _ray_grid(height: int, width: int, focal: float):
    """Camera-frame rays of a centred pinhole camera, cached per size.

    Returns:
        tuple: ``xc``, ``yc`` ([H, W] ray x/z and y/z), ``inv`` ([H, W]
        1 / |(xc, yc, 1)|, which turns a distance along the unit ray into
        depth), ``xn = xc * inv``, ``yn = yc * inv``.
    """
    u = (np.arange(width, dtype=np.float32) + 0.5 - width / 2) / focal
    v = (np.arange(height, dtype=np.float32) + 0.5 - height / 2) / focal
    xc = np.broadcast_to(u[None, :], (height, width))
    yc = np.broadcast_to(v[:, None], (height, width))
    inv = (1.0 / np.sqrt(xc * xc + yc * yc + 1)).astype(np.float32)
    grids = (xc, yc, inv, xc * inv, yc * inv)
    for g in grids:
        g.flags.writeable = False
    return grids


def _screen_rect(centre: np.ndarray, radius: float, cam: np.ndarray, axes,
                 focal: float, height: int, width: int
                 ) -> Optional[Tuple[int, int, int, int]]:
    """Pixel rectangle (v0, v1, u0, u1) that contains a bounding sphere."""
    right, down, fw = axes
    rel = centre - cam
    x, y, z = float(rel @ right), float(rel @ down), float(rel @ fw)
    if z + radius <= 0:
        return None
    if z - radius <= 1e-3:
        return 0, height, 0, width
    us, vs = [], []
    for zz in (z - radius, z + radius):
        for dx in (-radius, radius):
            us.append(focal * (x + dx) / zz + width / 2)
        for dy in (-radius, radius):
            vs.append(focal * (y + dy) / zz + height / 2)
    u0, u1 = max(int(np.floor(min(us))) - 1, 0), \
        min(int(np.ceil(max(us))) + 1, width)
    v0, v1 = max(int(np.floor(min(vs))) - 1, 0), \
        min(int(np.ceil(max(vs))) + 1, height)
    if u0 >= u1 or v0 >= v1:
        return None
    return v0, v1, u0, u1


def _boundaries(label: np.ndarray) -> np.ndarray:
    """One-pixel-wide boundaries: pixels whose right/lower neighbour differs
    (marked on the left/upper side only)."""
    edge = np.zeros(label.shape, bool)
    edge[:, :-1] |= label[:, :-1] != label[:, 1:]
    edge[:-1, :] |= label[:-1, :] != label[1:, :]
    return edge


def _depth_discontinuities(depth: np.ndarray, ids: np.ndarray,
                           ratio: float) -> np.ndarray:
    """Occlusion boundaries: neighbours on different primitives whose depths
    differ by more than ``ratio`` of the nearer one (a smooth surface seen at
    a grazing angle is one primitive, so it makes no band of edges)."""
    edge = np.zeros(depth.shape, bool)
    dx = np.abs(depth[:, :-1] - depth[:, 1:])
    edge[:, :-1] |= (dx > ratio * np.minimum(depth[:, :-1], depth[:, 1:])) & \
        (ids[:, :-1] != ids[:, 1:])
    dy = np.abs(depth[:-1, :] - depth[1:, :])
    edge[:-1, :] |= (dy > ratio * np.minimum(depth[:-1, :], depth[1:, :])) & \
        (ids[:-1, :] != ids[1:, :])
    return edge


def render_synth_room(rng: np.random.Generator, height: int, width: int,
                      with_persons: Optional[bool] = None,
                      params: SynthRoomParams = SynthRoomParams(),
                      with_objects: bool = True) -> SynthRoomSample:
    """Render one random room.

    Args:
        rng (np.random.Generator): Source of all randomness.
        height (int): Image height H in pixels.
        width (int): Image width W in pixels.
        with_persons (bool, optional): Force persons in or out; None draws
            with ``params.person_prob``. Defaults to None.
        params (SynthRoomParams): Sampling ranges. Defaults to the defaults.
        with_objects (bool): Also extract the VOC object / person part masks
            (needed by the PASCAL layout only). Defaults to True.

    Returns:
        SynthRoomSample: image and labels, each [H, W] or [H, W, 3].
    """
    if with_persons is None:
        with_persons = bool(rng.random() < params.person_prob)
    scene, hw, Hr, D, cam, axes, light = _sample_scene(rng, params,
                                                       with_persons)
    right, down, fw = axes
    focal = params.focal_ratio * width
    _, _, inv_norm, xn, yn = _ray_grid(height, width, float(focal))
    # unit world ray directions (a rotation keeps the camera-frame norm, so
    # the depth of a hit at distance t is t * inv_norm)
    d = [right[k] * xn + down[k] * yn + fw[k] * inv_norm for k in range(3)]
    o = cam

    # --- room: the ray leaves the box [-hw,hw] x [0,Hr] x [-1,D] ----------
    bounds = ((-hw, hw), (0.0, Hr), (-1.0, D))
    zbuf = None
    for k in range(3):
        lo, hi = bounds[k]
        # the exit distance is positive; abs() also turns the -inf of a
        # direction component of +0.0 into +inf (never the nearest wall)
        tk = np.abs(np.where(d[k] > 0, hi - o[k], lo - o[k]) *
                    _safe_inv(d[k]))
        if zbuf is None:
            zbuf, axis = tk, np.zeros(tk.shape, np.int8)
        else:
            axis[tk < zbuf] = k
            zbuf = np.minimum(zbuf, tk)
    zbuf = zbuf.astype(np.float32)
    # room primitive ids: 0 floor, 1 ceiling, 2 x-walls, 3 back/front walls
    room_material = ['floor', 'ceiling', 'wall', 'wall']
    ids = np.where(axis == 1, np.where(d[1] < 0, 0, 1),
                   np.where(axis == 0, 2, 3)).astype(np.int16)
    # room normals point inwards, i.e. against the ray
    nrm = [(axis == k) * -np.sign(d[k]) for k in range(3)]
    n_room = len(room_material)

    # --- primitives, each on the rays of its screen rectangle -------------
    for i, (kind, prm) in enumerate(scene.prims):
        centre, radius = _bounding_sphere(kind, prm)
        rect = _screen_rect(centre, radius, cam, axes, focal, height, width)
        if rect is None:
            continue
        v0, v1, u0, u1 = rect
        sub = (slice(v0, v1), slice(u0, u1))
        t, n = _HIT[kind](o, [dk[sub] for dk in d], prm)
        zs = zbuf[sub]
        closer = t < zs
        if not closer.any():
            continue
        zs[closer] = t[closer]
        ids[sub][closer] = n_room + i
        n = [nk[closer] for nk in n]
        if kind != _BOX:  # curved: renormalise float32 round-off
            inv = 1.0 / np.sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2])
            n = [nk * inv for nk in n]
        for k in range(3):
            nrm[k][sub][closer] = n[k]

    # --- labels from the primitive id buffer ------------------------------
    materials = room_material + scene.material
    table = np.array([SEMANTIC_MATERIALS[m][:3] for m in materials],
                     np.int32).T
    nyu40 = table[0].astype(np.uint8)[ids]
    voc = table[1].astype(np.uint8)[ids]
    context = table[2].astype(np.uint16)[ids]
    salient = np.array([SEMANTIC_MATERIALS[m][4] for m in materials],
                       np.uint8)
    saliency = salient[ids]
    depth = (zbuf * inv_norm).astype(np.float32)

    # camera-frame normals (the analytic normals are unit and face the ray)
    n_cam = np.empty((height, width, 3), np.float32)
    for j, axis_vec in enumerate((right, down, fw)):
        n_cam[..., j] = axis_vec[0] * nrm[0] + axis_vec[1] * nrm[1] + \
            axis_vec[2] * nrm[2]

    # edges: boundaries of (NYU-40 id, instance) u occlusion boundaries
    # room surfaces are instances too (ids -1..-n_room), so the crease
    # between two walls is an edge, as between two wall instances of NYU
    obj_of = np.array(list(range(-1, -n_room - 1, -1)) + scene.object_id,
                      np.int32)
    obj_ids = obj_of[ids]
    # one unique key per (class, instance): instance + n_room >= 0
    key = (obj_ids + n_room) + \
        (scene.num_objects + n_room) * nyu40.astype(np.int32)
    edge = _boundaries(key) | \
        _depth_discontinuities(depth, ids, params.depth_edge_ratio)

    # --- RGB ---------------------------------------------------------------
    albedo = np.concatenate([
        np.stack([_albedo(rng, m, params) for m in room_material]),
        np.stack(scene.albedo) if scene.albedo else np.zeros((0, 3),
                                                             np.float32)
    ]).astype(np.float32)
    lambert = np.maximum(
        nrm[0] * light[0] + nrm[1] * light[1] + nrm[2] * light[2], 0)
    shade = params.ambient + params.diffuse * lambert
    px, py, pz = (o[k] + zbuf * d[k] for k in range(3))
    freq = rng.uniform(4, 12, len(materials)).astype(np.float32)[ids]
    phase = rng.uniform(0, np.pi, 3).astype(np.float32)
    tex = 1 + params.texture_amplitude * np.sin(freq * px + phase[0]) * \
        np.sin(freq * (py + pz) + phase[1])
    rgb = np.take(albedo, ids, axis=0) * (tex * shade)[..., None]
    # zero-mean uniform sensor noise of std noise_std (uniform is 5x cheaper
    # to draw than Gaussian and looks the same at this level)
    rgb += (rng.random(rgb.shape, np.float32) - 0.5) * \
        (params.noise_std * np.sqrt(12.0))
    image = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)

    # invalid depth holes (sensor dropout); normals and labels stay valid
    if rng.random() < params.depth_hole_prob:
        hh = int(rng.integers(1, max(2, params.depth_hole_size * height)))
        ww = int(rng.integers(1, max(2, params.depth_hole_size * width)))
        y0 = int(rng.integers(0, height - hh + 1))
        x0 = int(rng.integers(0, width - ww + 1))
        depth[y0:y0 + hh, x0:x0 + ww] = 0

    # VOC objects with (for persons) their visible part masks
    objects = []
    if with_objects:
        part_code = np.array(
            [0] * n_room +
            [PERSON_PARTS.index(p) + 1 if p else 0 for p in scene.part],
            np.int8)[ids]
        for obj in np.unique(obj_ids[voc > 0]):
            mask = obj_ids == obj
            cls = int(voc[mask][0])
            parts = []
            if VOC_CLASSES[cls] == 'person':
                for k, name in enumerate(PERSON_PARTS):
                    pm = mask & (part_code == k + 1)
                    if pm.any():
                        parts.append((name, pm.astype(np.uint8)))
            objects.append(dict(cls=VOC_CLASSES[cls], class_ind=cls,
                                mask=mask.astype(np.uint8), parts=parts))
    return SynthRoomSample(image=image, depth=depth, normals=n_cam,
                           nyu40=nyu40, voc=voc, context=context,
                           edge=edge.astype(np.uint8),
                           saliency=saliency, objects=objects)


# ----------------------------------------------------------------------------
# Writers of the real layouts
# ----------------------------------------------------------------------------
def _imwrite(path: str, rgb_or_gray: np.ndarray) -> None:
    img = rgb_or_gray
    if img.ndim == 3:
        img = img[..., ::-1]  # files hold RGB; OpenCV writes BGR order
    if not cv2.imwrite(path, np.ascontiguousarray(img)):
        raise OSError(f'could not write image file {path}')


def _part_struct(sample: SynthRoomSample, imname: str) -> dict:
    """PASCAL-Part ``anno`` struct: imname, objects(class, class_ind, mask,
    parts(part_name, mask))."""
    obj_dtype = [('class', 'O'), ('class_ind', 'O'), ('mask', 'O'),
                 ('parts', 'O')]
    part_dtype = [('part_name', 'O'), ('mask', 'O')]
    objects = np.empty((1, len(sample.objects)), dtype=obj_dtype)
    for j, obj in enumerate(sample.objects):
        if obj['parts']:
            parts = np.empty((1, len(obj['parts'])), dtype=part_dtype)
            for k, (name, mask) in enumerate(obj['parts']):
                parts[0, k] = (name, mask)
        else:
            parts = np.zeros((0, 0))
        objects[0, j] = (obj['cls'], np.array([[obj['class_ind']]],
                                              np.uint8),
                         obj['mask'], parts)
    anno = np.empty((1, 1), dtype=[('imname', 'O'), ('objects', 'O')])
    anno[0, 0] = (imname, objects)
    return {'anno': anno}


def _write_sample(root: str, layout: str, name: str, index: int,
                  s: SynthRoomSample) -> None:
    j = osp.join
    seg = s.nyu40  # 0 = unlabeled, else NYU-40 id (= label + 1)
    if layout == 'nyud':
        _imwrite(j(root, 'images', name + '.png'), s.image)
        _imwrite(j(root, 'segmentation', name + '.png'), seg)
        np.save(j(root, 'depth', name + '.npy'), s.depth)
        _imwrite(j(root, 'normals', name + '.png'),
                 encode_normals_png(s.normals))
        _imwrite(j(root, 'edge', name + '.png'), s.edge * 255)
    elif layout == 'nyud_mt':
        _imwrite(j(root, 'images', name + '.jpg'), s.image)
        _imwrite(j(root, 'segmentation', name + '.png'), seg)
        np.save(j(root, 'depth', name + '.npy'), s.depth)
        np.save(j(root, 'normals', name + '.npy'), s.normals)
        np.save(j(root, 'edge', name + '.npy'), s.edge.astype(np.float32))
    else:
        _imwrite(j(root, 'JPEGImages', name + '.jpg'), s.image)
        # the real set has VOC12 maps for some images and Context-derived
        # ones for others: alternate so both folders are exercised
        sub = 'VOC12' if index % 2 == 0 else 'pascal-context'
        _imwrite(j(root, 'semseg', sub, name + '.png'), s.voc)
        sio.savemat(j(root, 'human_parts', name + '.mat'),
                    _part_struct(s, name), do_compression=True)
        _imwrite(j(root, 'sal_distill', name + '.png'), s.saliency * 255)
        _imwrite(j(root, 'normals_distill', name + '.png'),
                 encode_normals_png(s.normals))
        sio.savemat(j(root, 'pascal-context', 'trainval', name + '.mat'),
                    {'LabelMap': s.context}, do_compression=True)


_LAYOUT_DIRS = {
    'nyud': ('gt_sets', 'images', 'segmentation', 'depth', 'normals', 'edge'),
    'nyud_mt': ('gt_sets', 'images', 'segmentation', 'depth', 'normals',
                'edge'),
    'pascal': ('ImageSets/Context', 'JPEGImages', 'semseg/VOC12',
               'semseg/pascal-context', 'human_parts', 'sal_distill',
               'normals_distill', 'pascal-context/trainval'),
}


def _split_file(root: str, layout: str, split: str) -> str:
    if layout == 'pascal':
        return osp.join(root, 'ImageSets', 'Context', split + '.txt')
    return osp.join(root, 'gt_sets', split + '.txt')


def generate_synth_room(out_dir: str,
                        layout: str = 'nyud',
                        num_train: int = 200,
                        num_val: int = 50,
                        height: int = 240,
                        width: int = 320,
                        seed: int = 0,
                        progress: bool = False,
                        params: SynthRoomParams = SynthRoomParams()) -> str:
    """Render a SynthRoom data set and write it in a real on-disk layout.

    Args:
        out_dir (str): Parent folder; the data set goes to
            ``out_dir/NYUDv2``, ``out_dir/NYUD_MT`` or ``out_dir/PASCAL_MT``.
        layout (str): ``'nyud'`` (InvPT png/npy packaging), ``'nyud_mt'``
            (MTL-PyTorch jpg/npy packaging) or ``'pascal'`` (PASCAL_MT).
            Defaults to 'nyud'.
        num_train (int): Images in the train split. Defaults to 200.
        num_val (int): Images in the val split. Defaults to 50.
        height (int): Image height. Defaults to 240.
        width (int): Image width. Defaults to 320.
        seed (int): Seed; the same seed gives the same files. Defaults to 0.
        progress (bool): Show a tqdm progress bar. Defaults to False.
        params (SynthRoomParams): Scene sampling ranges.

    Returns:
        str: The data set root folder.
    """
    if layout not in LAYOUTS:
        raise ValueError(f'`layout` must be one of {LAYOUTS}, got {layout!r}')
    if num_train < 0 or num_val < 0 or num_train + num_val == 0:
        raise ValueError('`num_train` and `num_val` must be >= 0 and not '
                         f'both 0, got {num_train} and {num_val}')
    if height < 8 or width < 8:
        raise ValueError(f'image size {height}x{width} is too small (>= 8)')
    root = osp.join(out_dir, LAYOUT_ROOTS[layout])
    for sub in _LAYOUT_DIRS[layout]:
        os.makedirs(osp.join(root, sub), exist_ok=True)
    prefix = '2008_' if layout == 'pascal' else ''
    jobs = [(split, i) for split, n in (('train', num_train), ('val', num_val))
            for i in range(n)]
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(jobs), desc=f'SynthRoom {layout}', unit='img')
    names: Dict[str, List[str]] = {'train': [], 'val': []}
    for split, i in jobs:
        index = len(names['train']) + len(names['val'])
        name = f'{prefix}{index:06d}'
        rng = np.random.default_rng((seed, _SPLIT_STREAM[split], i))
        # PASCAL needs persons often enough for the human-parts task
        prob = params.person_prob_pascal if layout == 'pascal' else \
            params.person_prob
        sample = render_synth_room(rng, height, width,
                                   with_persons=bool(rng.random() < prob),
                                   params=params,
                                   with_objects=layout == 'pascal')
        _write_sample(root, layout, name, index, sample)
        names[split].append(name)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    for split, ids in names.items():
        with open(_split_file(root, layout, split), 'w') as f:
            f.write(''.join(n + '\n' for n in ids))
    return root


def benchmark_synth_room(num: int = 50, height: int = 240, width: int = 320,
                         seed: int = 0, with_objects: bool = False) -> float:
    """Rendering throughput of this process (no disk writes).

    Args:
        num (int): Images to render. Defaults to 50.
        height (int): Image height. Defaults to 240.
        width (int): Image width. Defaults to 320.
        seed (int): Seed. Defaults to 0.
        with_objects (bool): Also extract the PASCAL object / part masks.
            Defaults to False.

    Returns:
        float: Images per second (wall clock).
    """
    import time
    start = time.perf_counter()
    for i in range(num):
        render_synth_room(np.random.default_rng((seed, i)), height, width,
                          with_objects=with_objects)
    return num / (time.perf_counter() - start)
