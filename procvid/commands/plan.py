"""`procvid plan`: the steps from a start observation to a goal observation (procedure planning; the planners
and the observations: procvid.forecast.plan)."""

from __future__ import annotations

import argparse

from procvid.registry import COMMANDS

HELP = "plan the T steps from a start observation to a goal (image, VIDEO@t or FEATURES@t)"
EXAMPLES = [
    "procvid plan --start data/synth/videos/tea_0003.mp4@4.0 --goal data/synth/videos/tea_0003.mp4@21.5 --horizon 3",
    "procvid plan --start start.png --goal goal.png --horizon 4 --planner graph --top 3 --figure plans.png",
    "procvid plan --start features/tea_0003.safetensors@4 --goal features/tea_0003.safetensors@21.5 --horizon 3 "
    "--task tea --out plan.json",
    "procvid plan --start v.mp4@2 --goal v.mp4@30 --horizon 4 --model runs/planner/model",
]
COMMANDS.register("plan", HELP, __name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from procvid.forecast.plan import DECODES, METHODS

    p.add_argument("--start", required=True, metavar="IMG|VIDEO@t|FEATURES@t",
                   help="the start observation: an image, a video at t seconds (the frames in the second after "
                        "t), or a feature file at t seconds")
    p.add_argument("--goal", required=True, metavar="IMG|VIDEO@t|FEATURES@t",
                   help="the goal observation (a video or feature file: the frames in the second before t)")
    p.add_argument("--horizon", "-T", required=True, type=int, metavar="T", help="number of steps to plan")
    p.add_argument("--task", metavar="ID", help="the task (default: recognised from the observations)")
    p.add_argument("--planner", default="learned", choices=METHODS,
                   help="learned (transformer over start and goal, default) or graph (recognise the start and "
                        "goal steps, then the most probable valid path in the task's graph script)")
    p.add_argument("--decode", choices=DECODES,
                   help="learned planner: graph (best valid path of the graph script) or free (each position's "
                        "most probable step); default: the model's")
    p.add_argument("--top", type=int, default=1, metavar="K", help="print the K best plans (default 1)")
    p.add_argument("--model", metavar="DIR", help="planner model folder (default: checkpoints/procvid-planner, for "
                                                  "procvid synthetic world videos)")
    p.add_argument("--device", default="auto", help="device of the encoder (auto, cpu, cuda, ...)")
    p.add_argument("--out", metavar="FILE.json", help="also write the plans as JSON")
    p.add_argument("--figure", metavar="FILE.png", help="also draw the plans: start frame, the steps, goal frame")


def run(args: argparse.Namespace) -> int:
    from procvid.errors import ProcvidError
    from procvid.forecast.plan import plan_observations

    if args.horizon < 1:
        raise ProcvidError("--horizon must be at least 1")
    if args.top < 1:
        raise ProcvidError("--top must be at least 1")
    if args.figure and not args.figure.lower().endswith(".png"):
        raise ProcvidError(f"--figure {args.figure}: the figure is a PNG file (FILE.png)")
    result = plan_observations(args.start, args.goal, args.horizon, model=args.model, task=args.task,
                               method=args.planner, decode=args.decode, top=args.top, device=args.device,
                               out=args.out)
    for line in result["warnings"]:
        print(f"warning: {line}")
    for rank, plan in enumerate(result["plans"], 1):
        task = f"task {plan['task']}" + (f" (p={plan['task_prob']:.2f})" if plan["task_prob"] is not None else "")
        flag = "" if plan["valid"] else ", not a valid path of the graph script"
        print(f"plan {rank}: {task}, score {plan['score']:.2f}{flag}")
        for k, (step, text) in enumerate(zip(plan["steps"], plan["texts"]), 1):
            prob = f"  (p={plan['step_probs'][k - 1]:.2f})" if plan["step_probs"] else ""
            print(f"  {k}. [{step}] {text}{prob}")
    if args.out:
        print(f"written to {args.out}")
    if args.figure:
        from procvid.forecast.plan_figure import write_plan_figure

        print(f"drawn to {write_plan_figure(result, args.figure)}")
    return 0
