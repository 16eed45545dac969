"""procvid generate: key steps of a skill (plan) and one image per step (KIG), from an initial image."""

from procvid.registry import COMMANDS

HELP = "plan the key steps of a skill and generate one image per step from an initial scene image"
EXAMPLES = [
    'procvid generate --image start.png --skill "make a cup of tea" --out gen_tea',
    'procvid generate --image start.png --skill "pizza" --steps 3 --seed 7 --guidance 4 --out gen_pizza',
    "procvid generate --image start.png --plan my_steps.json --out gen_custom",
    'procvid generate --image start.png --skill "tea" --kig path/to/instruct-pix2pix --out gen_ip2p',
]
COMMANDS.register("generate", HELP, __name__)


def add_arguments(p):
    from procvid.commands import options
    from procvid.generate import DEFAULT_GUIDANCE, DEFAULT_IMAGE_GUIDANCE, DEFAULT_STEPS

    p.add_argument("--image", required=True, metavar="PNG", help="initial image of the scene")
    p.add_argument("--skill", metavar="TEXT", help="skill description, e.g. \"make a cup of tea\"")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--steps", type=int, default=5, metavar="N", help="at most N key steps (default 5)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE,
                   help=f"text guidance scale (default {DEFAULT_GUIDANCE:g})")
    p.add_argument("--image-guidance", type=float, default=DEFAULT_IMAGE_GUIDANCE,
                   help="image guidance scale: faithfulness to the previous image "
                        f"(default {DEFAULT_IMAGE_GUIDANCE:g})")
    p.add_argument("--sampler-steps", type=int, default=DEFAULT_STEPS,
                   help=f"diffusion sampler steps per image (default {DEFAULT_STEPS})")
    p.add_argument("--plan", metavar="FILE", help="your own steps: a JSON list of step texts or a plan.json "
                                                  "(skips retrieval)")
    p.add_argument("--kig", metavar="PATH", help="key-step image generator folder: ours or a diffusers "
                                                 "InstructPix2Pix / Stable Diffusion folder (default: shipped)")
    p.add_argument("--library", metavar="PATH", help="skill library: its folder, a `procvid graph build` output "
                                                     "folder or a synthetic world (default: shipped)")
    p.add_argument("--text-encoder", choices=("minilm", "clip"), default="minilm",
                   help="text encoder for skill retrieval (default minilm)")
    options.add_device(p)
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: 1 for the small shipped model, which runs fastest on one "
                        "while more threads stall when other jobs share the cores; torch's own for diffusers folders)")
    options.add_no_progress(p)


def run(args) -> int:
    import time

    from procvid.encoders.base import resolve_device
    from procvid.errors import ProcvidError
    from procvid.generate.chain import generate_key_steps
    from procvid.generate.kig import load_generator
    from procvid.generate.planner import Plan, SkillLibrary, make_plan, read_plan_file
    from procvid.generate.report import load_image
    from procvid.paths import CHECKPOINTS_DIR

    started = time.perf_counter()
    for name in ("steps", "sampler_steps", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ProcvidError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.skill is not None and not args.skill.strip():
        raise ProcvidError("--skill is empty: describe the skill, e.g. --skill \"make a cup of tea\"")
    if args.skill is None and not args.plan:
        raise ProcvidError("give --skill TEXT (retrieves a plan) or --plan FILE (your own steps)")
    start = load_image(args.image)
    device = args.device if args.device != "auto" else str(resolve_device("auto"))
    kig = load_generator(args.kig or CHECKPOINTS_DIR / "procvid-kig", device=device)
    if args.plan:
        texts = read_plan_file(args.plan)[: args.steps]
        plan = Plan(None, args.skill or "", [(None, t) for t in texts])
    else:
        library = SkillLibrary.load(args.library or CHECKPOINTS_DIR / "procvid-kig")
        plan = make_plan(library, args.skill, start, args.steps, text=args.text_encoder)
        if not plan.steps:
            raise ProcvidError(f"the retrieved skill {plan.name!r} has no steps")
        best = plan.retrieved[0]
        print(f"skill: {plan.name} (p = {best['probability']:.2f}); plan: {len(plan.steps)} steps")
    paths = generate_key_steps(kig, plan, start, args.out, seed=args.seed, guidance=args.guidance,
                               image_guidance=args.image_guidance, sampler_steps=args.sampler_steps,
                               settings={"kig": str(args.kig or "shipped procvid-kig")},
                               on_step=lambda i, text: print(f"  {i}. {text}"), threads=args.threads,
                               progress=not args.no_progress)
    print(f"wrote {len(paths['images'])} key-step images, {paths['contact_sheet']} and {paths['html']} "
          f"in {time.perf_counter() - started:.1f} s")
    return 0
