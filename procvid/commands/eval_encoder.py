"""procvid eval encoder: zero-shot step accuracy and text-to-frame retrieval on a synthetic world."""

from procvid.registry import EVAL_COMMANDS

HELP = "zero-shot frame step accuracy and text->frame recall@1/5 of an encoder on a synthetic world"
EXAMPLES = [
    "procvid eval encoder --world datasets/synth/heldout --encoder default",
    "procvid eval encoder --world datasets/synth/heldout --synth-seed 1 --videos 60",
]
EVAL_COMMANDS.register("encoder", HELP, __name__)


def add_arguments(p):
    p.add_argument("--world", required=True, help="synthetic world folder (created with --synth-seed if missing)")
    p.add_argument("--synth-seed", type=int, default=1, help="seed used to create --world when it is missing")
    p.add_argument("--videos", type=int, default=60, help="videos to create when --world is missing")
    p.add_argument("--encoder", default="default")
    p.add_argument("--fps", type=float, default=2.0)
    p.add_argument("--device", default="auto")


def run(args) -> int:
    import numpy as np

    from procvid.data.synthetic import ensure_world
    from procvid.encoders import load_encoder
    from procvid.metrics.retrieval import (accuracy_by_position, position_in_step, text_to_frame_recall,
                                           zero_shot_step_correct)
    from procvid.train.frames import load_world_frames

    from procvid.commands.options import check_positive

    check_positive(fps=args.fps, videos=args.videos)
    ensure_world(args.world, args.videos, args.synth_seed)
    encoder = load_encoder(args.encoder, device=args.device)
    # Whole videos, idle gaps included, one at a time: a sequence encoder embeds a frame with its
    # neighbours. The scores are over the in-step frames.
    data = load_world_frames(args.world, fps=args.fps, size=encoder.image_size, keep_idle=True)
    img = np.concatenate([encoder.encode_images(data.frames[data.video == v]) for v in range(len(data.videos))])
    in_step = data.step > 0
    img, data = img[in_step], data.subset(in_step)
    texts, frame_text = data.text_index()
    txt = encoder.encode_texts(texts)
    correct = zero_shot_step_correct(img, txt, frame_text, data.task_text_ranges(), data.task)
    acc = correct.mean()
    recall = text_to_frame_recall(img, txt, frame_text)
    print(f"encoder {encoder.id}")
    print(f"world {args.world}: {len(data.videos)} videos, {len(data.frames)} in-step frames, {len(texts)} step texts")
    print(f"zero-shot step accuracy (frame vs its task's step texts): {acc:.1%}")
    print(f"text->frame recall@1: {recall[1]:.1%}   recall@5: {recall[5]:.1%}")
    by_position = accuracy_by_position(correct, position_in_step(data.video, data.step))
    print("zero-shot step accuracy by tenth of the step (first ... last):",
          " ".join(f"{a:.0%}" for a in by_position))
    return 0
