"""Key-step generation benchmark on held-out synthetic videos.

For every key-step transition of the held-out videos (start = key frame k-1 from the video, text = step k,
truth = key frame k; procvid.generate.keyframes) each method makes the image after step k:
- KIG: the key-step image generator (both conditions, InstructPix2Pix guidance);
- KIG, no image: the same model with the null image (text guidance only): what the image condition adds;
- copy previous: the start image unchanged;
- true next frame: the real key frame k (a reference: what real frames score; not a method).
Metrics, all at the KIG's resolution (every image is resized to it first), in the default encoder's space
(procvid.encoders.load_encoder("default"), embeddings unit-normalised):
- state acc (the step-correctness metric): the image is classified among its task's step *states* by its
  nearest real frames: the reference frames of (task, step s) are the last STATE_WINDOW frames of step s
  (the scene after it, the hand at a few places) in every video of a separate reference world that performs
  s (default the KIG's training world datasets/synth/train, seed 0; never the held-out videos); step s
  scores the mean cosine of its STATE_K most similar reference frames, and the image is correct when step k
  scores highest. Chosen on real key frames of the tuning world (seed 3, 448 transitions; no generated
  image involved): 84.8% against 81.7% for one mean prototype per step and 84.4% for the nearest frame;
- step acc: zero-shot classification of the image against the task's step texts (correct when step k's
  text has the highest cosine); a weak judge of a state, which still shows every earlier step's objects;
- text align: cosine of the image and step k's text in the default CLIP space;
- scene cos: cosine of the image and the start image (consistency with the scene, CLIP space);
- PSNR: against the true next frame, in pixels.
Rollout: from each video's initial scene, generate its first ROLLOUT steps, each from the previous
*generated* image, and report state and step accuracy at each position.
A missing world (held-out: 60 videos, seed 1; reference: 120 videos, seed 0) is generated first.

    python tools/bench_generate.py [--kig checkpoints/procvid-kig] [--world datasets/synth/heldout_seed1]
                                   [--reference datasets/synth/train]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

STATE_WINDOW = 4  # reference frames per performed step: its last 4 (the same state, the hand elsewhere)
STATE_K = 5  # a step state's score: mean cosine of its 5 most similar reference frames


def transitions(key_frames, tasks):
    """Arrays over all transitions: start/truth images, task index, step index (0-based), step texts."""
    task_index = {t["id"]: i for i, t in enumerate(tasks)}
    start, truth, task, step = [], [], [], []
    for kf in key_frames:
        for k, sid in enumerate(kf.order, start=1):
            start.append(kf.frames[k - 1, -1])
            truth.append(kf.frames[k, -1])
            task.append(task_index[kf.task_id])
            step.append(sid - 1)
    texts = [tasks[t]["steps"][s]["text"] for t, s in zip(task, step)]
    return np.stack(start), np.stack(truth), np.array(task), np.array(step), texts


class Scorer:
    """The default encoder's view of images: state and step classification, text alignment, scene similarity."""

    def __init__(self, tasks, size, reference):
        """`reference`: key frames (procvid.generate.keyframes, window >= STATE_WINDOW) of the reference world."""
        from procvid.encoders import load_encoder

        self.encoder, self.size = load_encoder("default"), size
        self.step_texts = [self.encoder.encode_texts([s["text"] for s in t["steps"]]) for t in tasks]
        self.reference = []  # per task: (embeddings of its steps' end frames, their step indices)
        for t, task in enumerate(tasks):
            frames, steps = [], []
            for kf in (kf for kf in reference if kf.task_id == task["id"]):
                for k, sid in enumerate(kf.order, start=1):
                    frames.append(kf.frames[k, -STATE_WINDOW:])
                    steps += [sid - 1] * len(frames[-1])
            steps = np.array(steps)
            if set(steps) != set(range(len(task["steps"]))):
                raise SystemExit(f"reference world: a step of task {task['id']} is never performed")
            self.reference.append((self.embed(np.concatenate(frames)), steps))

    def state_scores(self, e, t) -> np.ndarray:
        """Per step of task t: mean cosine of image embedding e and its STATE_K nearest reference frames."""
        emb, steps = self.reference[t]
        sims = emb @ e
        return np.array([np.sort(sims[steps == s])[-STATE_K:].mean() for s in range(len(self.step_texts[t]))])

    def embed(self, images):
        from procvid.generate.keyframes import resize_square

        return self.encoder.encode_images(resize_square(images, self.size))

    def correct(self, emb, task, step) -> dict:
        """Per image, whether its task's best-scoring step state / step text is step `step`."""
        return {"state acc": np.array([self.state_scores(e, t).argmax() == s for e, t, s in zip(emb, task, step)]),
                "step acc": np.array([(self.step_texts[t] @ e).argmax() == s for e, t, s in zip(emb, task, step)])}

    def scores(self, images, start_emb, truth, task, step) -> dict:
        from procvid.generate.keyframes import resize_square

        emb = self.embed(images)
        text = np.stack([self.step_texts[t][s] for t, s in zip(task, step)])
        a, b = resize_square(images, self.size).astype(np.float64), resize_square(truth, self.size).astype(np.float64)
        mse = ((a - b) ** 2).mean(axis=(1, 2, 3))
        return {**{k: 100 * v.mean() for k, v in self.correct(emb, task, step).items()},
                "text align": (emb * text).sum(1).mean(),
                "scene cos": (emb * start_emb).sum(1).mean(),
                "PSNR": (10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-10))).mean()}


def generate_all(kig, starts, texts, batch, **options) -> tuple[np.ndarray, float]:
    """Images for all transitions, in batches; returns them and the seconds per image."""
    out, started = [], time.perf_counter()
    for i in range(0, len(texts), batch):
        prev = None if starts is None else starts[i:i + batch]
        out.append(kig.generate_batch(prev, texts[i:i + batch], seed=i, **options))
    return np.concatenate(out), (time.perf_counter() - started) / len(texts)


def rollout(kig, key_frames, tasks, scorer, length, batch, **options):
    """Accuracies (%) at each position of `length`-step rollouts from each video's initial scene: a dict
    metric -> [2, length] array (KIG rollout; the videos' true key frames at the same positions, the
    reference); and the number of videos."""
    task_index = {t["id"]: i for i, t in enumerate(tasks)}
    videos = [kf for kf in key_frames if len(kf.order) >= length]
    images = np.stack([kf.frames[0, -1] for kf in videos])
    task = np.array([task_index[kf.task_id] for kf in videos])
    acc = {}
    for k in range(length):
        step = np.array([kf.order[k] - 1 for kf in videos])
        texts = [tasks[t]["steps"][s]["text"] for t, s in zip(task, step)]
        images, _ = generate_all(kig, images, texts, batch, **options)
        truth = np.stack([kf.frames[k + 1, -1] for kf in videos])
        for row, x in enumerate((images, truth)):
            for name, ok in scorer.correct(scorer.embed(x), task, step).items():
                acc.setdefault(name, np.zeros((2, length)))[row, k] = 100 * ok.mean()
    return acc, len(videos)


def main(argv=None) -> int:
    from pathlib import Path

    import torch

    from procvid.data.synthetic import ensure_world
    from procvid.generate.keyframes import load_key_frames, world_videos
    from procvid.generate import DEFAULT_GUIDANCE, DEFAULT_IMAGE_GUIDANCE, DEFAULT_STEPS
    from procvid.generate.kig import load_generator
    from procvid.paths import CHECKPOINTS_DIR, REPO_ROOT

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kig", default=str(CHECKPOINTS_DIR / "procvid-kig"))
    p.add_argument("--world", default=str(REPO_ROOT / "datasets/synth/heldout_seed1"))
    p.add_argument("--reference", default=str(REPO_ROOT / "datasets/synth/train"),
                   help="world whose real key frames define the step states (default the KIG's training world)")
    p.add_argument("--videos", type=int, default=None, help="only the first N videos (default all)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="sampler steps")
    p.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE)
    p.add_argument("--image-guidance", type=float, default=DEFAULT_IMAGE_GUIDANCE)
    p.add_argument("--rollout", type=int, default=5, help="rollout length (0: skip)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = p.parse_args(argv)
    if Path(args.reference).resolve() == Path(args.world).resolve():
        p.error("--reference must be another world than --world: step states never come from held-out videos")
    if args.threads:
        torch.set_num_threads(args.threads)

    tasks, rows = world_videos(ensure_world(args.world, num_videos=60, seed=1))
    names = [r["video_id"] for r in rows][: args.videos]
    key_frames = load_key_frames(args.world, videos=names, progress=False)
    start, truth, task, step, texts = transitions(key_frames, tasks)
    kig = load_generator(args.kig)
    reference = load_key_frames(ensure_world(args.reference, num_videos=120, seed=0), window=STATE_WINDOW,
                                progress=False)
    scorer = Scorer(tasks, kig.image_size, reference)
    start_emb = scorer.embed(start)
    options = {"steps": args.steps, "guidance": args.guidance, "image_guidance": args.image_guidance}

    generated, per_image = generate_all(kig, start, texts, args.batch, **options)
    no_image, per_image_blind = generate_all(kig, None, texts, args.batch, **options)
    rows = {"KIG": (generated, per_image), "KIG, no image": (no_image, per_image_blind),
            "copy previous": (start, 0.0), "true next frame": (truth, None)}
    print(f"{len(texts)} key-step transitions from {len(key_frames)} videos of {args.world}; KIG {args.kig}, "
          f"{args.steps} sampler steps, guidance {args.guidance:g} (text) / {args.image_guidance:g} (image), "
          f"{kig.image_size} px, {torch.get_num_threads()} CPU threads; step states from the key frames of "
          f"{len(reference)} videos of {args.reference}")
    print(f"{'method':17} {'state acc %':>11} {'step acc %':>10} {'text align':>10} {'scene cos':>10} "
          f"{'PSNR dB':>8} {'s/step':>7}")
    for name, (images, seconds) in rows.items():
        s = scorer.scores(images, start_emb, truth, task, step)
        sec, psnr = ("-", "-") if seconds is None else (f"{seconds:.3f}", f"{s['PSNR']:.2f}")  # truth vs itself
        print(f"{name:17} {s['state acc']:11.1f} {s['step acc']:10.1f} {s['text align']:10.3f} "
              f"{s['scene cos']:10.3f} {psnr:>8} {sec:>7}")
    if args.rollout:
        acc, n = rollout(kig, key_frames, tasks, scorer, args.rollout, args.batch, **options)
        print(f"rollout over {n} videos from their initial scene, each step from the previous generated image; "
              f"accuracy % at steps 1-{args.rollout}:")
        for metric, table in acc.items():
            for name, values in zip(("KIG rollout", "true key frames"), table):
                print(f"  {metric:9} {name:15} " + " ".join(f"{a:5.1f}" for a in values)
                      + f"   mean {values.mean():.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
