"""Synthetic procedural-video world: instructional-style videos rendered from ground-truth graphs.

Each task is a DAG of steps (preconditions, optional steps, interchangeable pairs) acting on a
top-down table scene. A video follows a random valid order of its task; every step changes the
scene gradually and lastingly (objects are carried in, grow, move, change colour or shape) while a
hand moves continuously through steps and idle gaps, so raw frame differences do not give the
boundaries away.
Camera jitter, lighting drift and sensor noise scale with `difficulty`.

World version 2 (generate_world(version=2, timing=...), `procvid synth --version 2`) times steps,
idle gaps and repeated steps like a real dataset (`timing`: quantiles of CrossTask, COIN or
CaptainCook4D annotations in timing.json; `plan_v2`) and adds camera pans and zoom, lighting
changes, a textured cluttered background, distractors and occlusion (`render_v2`); labels stay
exact, and OUT/nuisances/<video>.json lists each nuisance's frame ranges. Version 1 is unchanged.

With mistakes=P (v1, `procvid synth --mistakes P`) a video deviates from its task's graph with
probability P: a step performed before one of its preconditions, a required step skipped, or a step
repeated (plan.with_mistake); the videos show it, and OUT/mistakes.json lists each video's mistake
(the synthetic reader turns it into StepSegment.errors and meta["mistake"]). P = 0 (the default)
writes exactly the world without the option.

On-disk layout written by generate_world() (readers rely on it):

    OUT/world.json, tasks.json, tasks_primary.txt (CrossTask format), videos.csv,
        graphs/<task>.json (networkx node-link, edges="edges"), videos/<video>.mp4,
        annotations/<task>_<video>.csv (CrossTask rows "step,start,end"), labels/<video>.npy (int16)

Frame i (time i/fps) has label k iff start <= i/fps < end for the annotation row of step k: all
step boundaries lie on frames whose times are exact multiples of 0.01 s.

Modules: `tasks` (task definitions, graphs, orders), `plan` (video order and step timing),
`render` (scene state and frames), `world` (encoding, generate_world). All public names are
re-exported here.
"""

from __future__ import annotations

from .plan import (MIN_STEP_FRAMES, MISTAKE_KINDS, MISTAKE_TAGS, Mistake, VideoPlan, frame_grid,
                   min_video_duration, plan_video, with_mistake)
from .plan_v2 import plan_video_v2
from .render_v2 import iter_video_frames_v2, video_renderer_v2
from .render import (
    ARM_RADIUS,
    CARRY,
    HAND_RADIUS,
    SKIN,
    SLEEVES,
    TOOL,
    TOOL_COLOR,
    TOOL_TIP,
    iter_video_frames,
    render_state,
    render_video_frames,
)
from .tasks import (
    BLACK,
    BLUE,
    GREEN,
    GREY,
    ORANGE,
    PINK,
    PURPLE,
    RED,
    RGB,
    SKIP_PROB,
    WHITE,
    YELLOW,
    Action,
    Obj,
    Point,
    Scene,
    TaskSpec,
    sample_order,
    task_graph,
    task_spec,
    task_specs,
)
from .timing import TIMINGS, load_timing
from .world import CRF, encode_video, ensure_world, generate_world, video_codec

__all__ = [
    # tasks
    "RGB", "Point", "SKIP_PROB", "Obj", "Action", "Scene", "TaskSpec",
    "WHITE", "RED", "GREEN", "BLUE", "YELLOW", "ORANGE", "PURPLE", "PINK", "GREY", "BLACK",
    "task_specs", "task_spec", "task_graph", "sample_order",
    # plan
    "MIN_STEP_FRAMES", "VideoPlan", "frame_grid", "min_video_duration", "plan_video",
    "MISTAKE_KINDS", "MISTAKE_TAGS", "Mistake", "with_mistake",
    # render
    "CARRY", "TOOL", "SKIN", "SLEEVES", "HAND_RADIUS", "ARM_RADIUS", "TOOL_TIP", "TOOL_COLOR",
    "render_state", "iter_video_frames", "render_video_frames",
    # v2
    "TIMINGS", "load_timing", "plan_video_v2", "video_renderer_v2", "iter_video_frames_v2",
    # world
    "CRF", "video_codec", "encode_video", "generate_world", "ensure_world",
]
