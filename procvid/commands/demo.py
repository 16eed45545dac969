"""procvid demo: the main job on the embedded default, end to end on a fresh synthetic world."""

from procvid.registry import COMMANDS

HELP = "synthesise instructional videos with ground truth and run the whole pipeline on them"
EXAMPLES = ["procvid demo --out demo_out", "procvid demo --out demo_out --videos 30 --seed 7"]
COMMANDS.register("demo", HELP, __name__)


def add_arguments(p):
    p.add_argument("--out", default="demo_out", help="output folder (a rerun reuses what is there)")
    p.add_argument("--videos", type=int, default=18, help="videos to synthesise (spread over the tasks)")
    p.add_argument("--seed", type=int, default=100, help="world seed (the shipped models were trained on seed 0)")
    p.add_argument("--config", default="synthetic",
                   help="pipeline preset: a name in configs/run/ or a YAML file (default synthetic: the shipped "
                        "models trained on this world)")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    import time
    from pathlib import Path

    from procvid.commands.options import check_positive
    from procvid.data.synthetic import generate_world
    from procvid.outputs import prepare_output_dir
    from procvid.pipeline import RunConfig, run_pipeline

    check_positive(videos=args.videos)
    config = RunConfig.from_yaml(args.config)  # a bad preset or --out fails before minutes of synthesis
    prepare_output_dir(args.out)
    started = time.perf_counter()
    world = Path(args.out) / "world"
    print(f"synthesising {args.videos} videos (seed {args.seed}) -> {world}")
    generate_world(world, num_videos=args.videos, seed=args.seed, min_duration=30, max_duration=60,
                   progress=not args.no_progress)
    print("embedding, finding key steps, grounding them, building graph scripts, generating key steps, "
          "writing the report")
    result = run_pipeline([world / "videos"], args.out, config, annotations=str(world),
                          progress=not args.no_progress)
    for label, s in result.segmentation.items():
        print(f"key steps ({label}) vs truth: boundary F1 (+-1 s) {s['boundary_f1']:.2f}, MoF {s['mof']:.1f}, "
              f"F1@10/25/50 {s['f1@10']:.1f}/{s['f1@25']:.1f}/{s['f1@50']:.1f}, Edit {s['edit']:.1f}")
    g = result.grounding_scores
    if g:
        print(f"grounded steps vs truth: step order accuracy {g['path_accuracy']:.1f}%, exact paths {g['exact']:.1f}%, "
              f"frame accuracy {g['frame_accuracy']:.1f}% ({g['videos']} videos)")
    scored = [g["scores"].f1 for g in result.graphs.values() if g["scores"] is not None]
    if scored:
        print(f"graph scripts vs true task graphs: mean F1 {sum(scored) / len(scored):.2f} over {len(scored)} tasks")
    for example in result.generation.values():
        print(f"key-step generation example ({example['name']}): {example['contact_sheet']}")
    print(f"done in {time.perf_counter() - started:.0f} s; open the report: {result.report}")
    return 0
