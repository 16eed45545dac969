"""Next-step forecasting and task-recognition benchmark on a held-out synthetic world, then the planning tables.

    .venv/bin/python tools/bench_forecast.py            # held-out world datasets/synth/bench_seg (seed 2, 120 videos)
    .venv/bin/python tools/bench_forecast.py --tune     # the same tables on the tuning world (seed 3, 60 videos)
    .venv/bin/python tools/bench_forecast.py --no-plan  # without tools/bench_plan.py's tables

Worlds (v1, 6 tasks; each generated, embedded with the shipped `video` encoder at 2 fps and segmented
with the sbd detector when missing): training datasets/synth/forecast_train_seed11 (seed 11, 240
videos: the forecasters, the script model, graph scripts, Markov counts, task centroids), tuning
datasets/synth/tune_seg (seed 3), held out datasets/synth/bench_seg (seed 2; never used to choose anything).

Models: the shipped latent forecaster checkpoints/procvid-forecast (regression head + contrastive term,
configs/train/forecast.yaml; trained if missing), flow matching (--model.head flow) and the plain-
regression ablation (--model.contrast_weight 0), and the script model (configs/train/script.yaml on
the training world), the last three trained into runs/bench_forecast if missing (about 2 min of CPU
each; 10 min wall on 2 busy cores).

Next step. For every held-out video with annotated steps s_1..s_n (time order): at the end of every
step k < n ("step ends", the observation time is the step's annotated end) and at 3 random times
per video uniform in [0, start of s_n) ("random t", ProcedureVRL's protocol), the truth is the first
step that starts at or after that time. Each predictor ranks the task's steps (the true task is given
to every row but "task recognized"); top-1 / top-3 accuracy in %.
  latent rows  the forecaster on the features before the time; readout by prototype or step text
  grounded     the video before the time grounded against the task's step texts (procvid.ground,
               `video` encoder's text space, graph order with the training world's induced graph;
               sbd segments of the whole video clipped at the time) -> the step path so far, then
               the script model / graph walk / bigram Markov / linear order (procvid.graph.script_model)
  fused        the shipped latent and the grounded script-model distributions multiplied (no weights)
  oracle       the script model on the true step path so far (the steps started before the time):
               the upper reference for step-path methods.
Task recognition: after 10 %, 25 %, 50 % of each video's duration, which of the 6 tasks: the
forecaster's task head; the nearest task centroid (mean feature of the training world's frames per
task, cosine to the mean observed feature); zero-shot by text (mean over observed frames of the best
cosine to the task's step texts).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

TRAIN = (Path("datasets/synth/forecast_train_seed11"), 11, 240)
TUNE = (Path("datasets/synth/tune_seg"), 3, 60)
HELD_OUT = (Path("datasets/synth/bench_seg"), 2, 120)
OUT = Path("runs/bench_forecast")
CONFIG = "configs/train/forecast.yaml"
RANDOM_TIMES = 3  # per video
FRACTIONS = (0.10, 0.25, 0.50)
FLOW_NOISE = 0.0  # flow row's starting noise, chosen on the tuning world among 1.0, 0.5, 0.0


def train_forecaster(out: Path, *overrides: str) -> Path:
    import logging

    from procvid.train.cli import train

    logging.getLogger("lightning").setLevel(logging.WARNING)
    started = time.perf_counter()
    train("forecast", ["--config", CONFIG, "--config", "configs/trainer/cpu.yaml", *overrides,
                       "--model.export_dir", str(out), "--trainer.default_root_dir", str(out.parent),
                       "--trainer.logger", "false", "--trainer.callbacks", "null",
                       "--trainer.enable_progress_bar", "false", "--trainer.enable_checkpointing", "false"])
    print(f"trained a forecaster ({' '.join(overrides) or 'shipped config'}) in {time.perf_counter() - started:.0f} s "
          f"-> {out}")
    return out


def models(train_world: Path):
    """{label: forecaster} (the shipped one, flow matching, the plain-regression ablation) and the script
    model; each trained here when missing."""
    from bench_script import train_model

    from procvid.forecast.latent import LatentForecaster
    from procvid.forecast.stage import shipped_forecaster
    from procvid.graph.script_model import ScriptModel

    folders = {"shipped": (shipped_forecaster(), ()), "flow": (OUT / "flow", ("--model.head", "flow")),
               "mse": (OUT / "regression_mse", ("--model.contrast_weight", "0"))}
    if not (folders["shipped"][0] / "model.safetensors").exists():
        folders["shipped"] = (OUT / "shipped", ())
    forecasters = {}
    for label, (folder, overrides) in folders.items():
        if not (folder / "model.safetensors").exists():
            train_forecaster(folder, *overrides)
        forecasters[label] = LatentForecaster.from_pretrained(folder)
    forecasters["flow"].noise = FLOW_NOISE
    script = OUT / "script" / train_world / "model"  # where bench_script.train_model puts it
    if not (script / "model.safetensors").exists():
        print(f"trained the script model in {train_model(str(train_world), OUT / 'script')[1]:.0f} s")
    return forecasters, ScriptModel.from_pretrained(script)


def prepare(world: Path, seed: int, n: int):
    """(dataset, sbd segments folder, `video` encoder) of an evaluation world; as bench_discover.prepare, but
    a stage runs only when some output is missing (a complete folder is read without taking its lock, so
    other benchmarks may use it at the same time)."""
    from procvid.data import load_dataset
    from procvid.encoders import load_encoder
    from procvid.segment import get_detector
    from procvid.segment.batch import segment_batch
    from procvid.train.forecast import ForecastDataModule

    ForecastDataModule(world=str(world), num_videos=n, world_seed=seed).prepare_data()  # world and features
    dataset = load_dataset(world)
    features, segments = Path(f"{world}_features_video"), Path(f"{world}_segments_sbd")
    encoder = load_encoder("video")
    if any(not (segments / f"{v.video_id}.segments.json").exists() for v in dataset.videos):
        segment_batch([features], segments, get_detector("sbd"), encoder="video", keyframes=None, progress=False)
    return dataset, segments, encoder


def prepare_train(world: Path, seed: int, n: int):
    from procvid.data import load_dataset
    from procvid.train.forecast import ForecastDataModule

    ForecastDataModule(world=str(world), num_videos=n, world_seed=seed).prepare_data()
    return load_dataset(world)


def positions(dataset, features: Path, seed: int = 0) -> list[dict]:
    """Observation times of every annotated video with features (module doc)."""
    from procvid.features import load_features
    from procvid.forecast.latent import next_segment
    from procvid.graph.script_model import collapse_repeats

    rng = np.random.default_rng(seed)
    out = []
    for v in sorted(dataset.videos, key=lambda v: v.video_id):
        path = features / f"{v.video_id}.json"
        if not v.segments or not path.exists():
            continue
        X, t, _ = load_features(path)
        segs = sorted(v.segments, key=lambda s: s.start)
        times = [("step end", float(s.end)) for s in segs[:-1]]
        times += [("random t", float(rng.uniform(0.0, segs[-1].start))) for _ in range(RANDOM_TIMES)]
        for kind, until in times:
            truth = next_segment(segs, until)
            out.append({"video": v.video_id, "task": v.task_id, "X": X, "t": t, "until": until, "kind": kind,
                        "truth": truth.step_id,
                        "true_prefix": collapse_repeats([s.step_id for s in segs if s.start < until])})
    return out


def grounded_prefixes(items: list[dict], dataset, segments: Path, graphs: dict, encoder) -> None:
    """item["grounded"]: the step path of the video before item["until"] (module doc)."""
    from procvid.ground import ground_video
    from procvid.segment.files import read_segments_file

    texts, units = {}, {}
    for item in items:
        task = dataset.tasks[item["task"]]
        if task.id not in texts:
            texts[task.id] = encoder.encode_texts(list(task.texts().values()))
        if item["video"] not in units:
            _, segs = read_segments_file(segments / f"{item['video']}.segments.json")
            units[item["video"]] = [(s.start_frame, s.end_frame) for s in segs]
        f = int(np.sum(item["t"] < item["until"]))
        if f == 0:
            item["grounded"] = []
            continue
        clipped = [(a, min(b, f)) for a, b in units[item["video"]] if a < f]
        g = ground_video(item["X"][:f], item["t"][:f], texts[task.id], list(task.steps), clipped or None, "graph",
                         graphs.get(task.id))
        item["grounded"] = g.path


def score(items: list[dict], dists: list[dict], steps: dict) -> dict:
    from procvid.graph.script_model import ranked

    out = {}
    for kind in ("step end", "random t"):
        hits = [(top[0] == it["truth"], it["truth"] in top) for it, d in zip(items, dists) if it["kind"] == kind
                for top in [[s for s, _ in ranked(d, steps[it["task"]])[:3]]]]
        out[kind] = (100 * np.mean([h[0] for h in hits]), 100 * np.mean([h[1] for h in hits]), len(hits))
    return out


def fuse(a: dict, b: dict) -> dict:
    """The product of two next-step distributions over the same steps (END dropped), renormalised."""
    p = {s: a[s] * b.get(s, 0.0) for s in a}
    total = sum(p.values()) or 1.0
    return {s: v / total for s, v in p.items()}


def latent_dists(model, items, tasks=True, readout="prototype", texts=None, chunk=128) -> list[dict]:
    out = []
    for i in range(0, len(items), chunk):
        part = items[i: i + chunk]
        out += model.predict([(it["X"], it["t"]) for it in part], [it["until"] for it in part],
                             [it["task"] for it in part] if tasks else None, readout, texts)
    return out


def forecasting_table(items, dataset, base: dict, forecasters: dict, script, encoder) -> dict:
    """base: bench_script.predictors on the training world."""
    steps = {t: list(task.steps) for t, task in dataset.tasks.items()}
    shipped = forecasters["shipped"]
    texts = {t: encoder.encode_texts([shipped.vocab.texts[t][s] for s in shipped.vocab.tasks[t]])
             for t in shipped.vocab.tasks}
    rows = {}
    started = time.perf_counter()
    shipped_dists = latent_dists(shipped, items)
    rows["latent (shipped), prototype readout"] = score(items, shipped_dists, steps)
    rows["latent (shipped), text readout"] = score(items, latent_dists(shipped, items, readout="text", texts=texts),
                                                   steps)
    rows["latent (shipped), task recognized"] = score(items, latent_dists(shipped, items, tasks=False), steps)
    rows["latent flow matching"] = score(items, latent_dists(forecasters["flow"], items), steps)
    rows["latent regression, MSE only (ablation)"] = score(items, latent_dists(forecasters["mse"], items), steps)
    latent_s = time.perf_counter() - started
    for label, key in [("grounded + script model", "script model"), ("grounded + graph walk", "graph walk"),
                       ("grounded + bigram Markov", "bigram Markov"), ("grounded + linear order", "linear script")]:
        model = base[key]
        rows[label] = score(items, [model.predict(it["task"], [it["grounded"]])[0] for it in items], steps)
    script_dists = [script.predict(it["task"], [it["grounded"]])[0] for it in items]
    rows["latent x grounded script model"] = score(items, [fuse(a, b) for a, b in zip(shipped_dists, script_dists)],
                                                    steps)
    rows["oracle: true path + script model"] = score(
        items, [script.predict(it["task"], [it["true_prefix"]])[0] for it in items], steps)
    rows["true path + bigram Markov"] = score(
        items, [base["bigram Markov"].predict(it["task"], [it["true_prefix"]])[0] for it in items], steps)
    n_end, n_rand = rows["oracle: true path + script model"]["step end"][2], rows[
        "oracle: true path + script model"]["random t"][2]
    print(f"\nNext-step forecasting ({n_end} step ends, {n_rand} random times; latent rows {latent_s:.0f} s)")
    print(f"{'predictor':<40} {'end top1':>8} {'top3':>6} {'t top1':>8} {'top3':>6}")
    for label, r in rows.items():
        print(f"{label:<40} {r['step end'][0]:8.1f} {r['step end'][1]:6.1f} {r['random t'][0]:8.1f} "
              f"{r['random t'][1]:6.1f}")
    return rows


def targets(rows: dict) -> None:
    latent, oracle = rows["latent (shipped), prototype readout"], rows["oracle: true path + script model"]
    markov = rows["grounded + bigram Markov"]
    for kind in ("step end", "random t"):
        a, o, m = latent[kind][0], oracle[kind][0], markov[kind][0]
        print(f"targets ({kind}): latent top-1 {a:.1f} vs oracle - 5 = {o - 5:.1f}: "
              f"{'met' if a >= o - 5 else 'MISSED'}; vs grounded bigram Markov + 10 = {m + 10:.1f}: "
              f"{'met' if a >= m + 10 else 'MISSED'}")


def recognition_table(dataset, features: Path, train_dataset, train_features: Path, model, encoder) -> None:
    from procvid.features import load_features

    videos = [(v, *load_features(features / f"{v.video_id}.json")[:2]) for v in dataset.videos
              if (features / f"{v.video_id}.json").exists()]
    task_ids = list(model.vocab.tasks)
    centroids = {}
    for v in train_dataset.videos:
        X = load_features(train_features / f"{v.video_id}.json")[0]
        centroids.setdefault(v.task_id, []).append(np.asarray(X, np.float32))
    C = np.stack([np.concatenate(centroids[t]).mean(0) for t in task_ids])
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    texts = {t: encoder.encode_texts(list(dataset.tasks[t].texts().values())) for t in task_ids}
    print(f"\nTask recognition from partial video ({len(videos)} videos, {len(task_ids)} tasks; chance "
          f"{100 / len(task_ids):.1f}%)")
    print(f"{'method':<30} " + " ".join(f"{int(100 * f):>5}%" for f in FRACTIONS))
    rows = {"forecaster task head": [], "nearest task centroid": [], "zero-shot step texts": []}
    for frac in FRACTIONS:
        untils = [frac * (t[-1] + (t[1] - t[0] if len(t) > 1 else 0.5)) for _, _, t in videos]
        probs = model.recognize([(X, t) for _, X, t in videos], untils)
        rows["forecaster task head"].append(np.mean([max(p, key=p.get) == v.task_id for p, (v, _, _) in
                                                     zip(probs, videos)]))
        hits_c, hits_t = [], []
        for (v, X, t), u in zip(videos, untils):
            seen = np.asarray(X, np.float32)[t < u]
            if not len(seen):
                seen = np.asarray(X, np.float32)[:1]
            m = seen.mean(0)
            hits_c.append(task_ids[int(np.argmax(C @ (m / np.linalg.norm(m))))] == v.task_id)
            hits_t.append(max(task_ids, key=lambda k: float((seen @ np.asarray(texts[k]).T).max(1).mean()))
                          == v.task_id)
        rows["nearest task centroid"].append(np.mean(hits_c))
        rows["zero-shot step texts"].append(np.mean(hits_t))
    for label, accs in rows.items():
        print(f"{label:<30} " + " ".join(f"{100 * a:6.1f}" for a in accs))


def planning_tables(argv: list[str]) -> None:
    path = Path(__file__).parent / "bench_plan.py"
    if not path.exists():
        print("\nPlanning: tools/bench_plan.py does not exist yet: no planning tables")
        return
    spec = importlib.util.spec_from_file_location("bench_plan", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    print("\nPlanning (tools/bench_plan.py)")
    module.main(argv)


def main(argv=None) -> int:
    import torch

    from procvid.graph.script_model import split_sequences

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tune", action="store_true", help="the tuning world (seed 3) instead of the held-out one")
    ap.add_argument("--no-plan", action="store_true", help="skip the planning tables (tools/bench_plan.py)")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    world, seed, n = TUNE if args.tune else HELD_OUT
    train_dataset = prepare_train(*TRAIN)
    dataset, segments, encoder = prepare(world, seed, n)
    forecasters, script = models(TRAIN[0])
    train_seqs = split_sequences(train_dataset)
    print(f"training world {TRAIN[0]} (seed {TRAIN[1]}, {len(train_dataset.videos)} videos); evaluated on {world} "
          f"(seed {seed}, {len(dataset.videos)} videos, {'tuning' if args.tune else 'held out'}); `video` features "
          f"2 fps; forecasters: " + ", ".join(f"{k} {m.folder}" for k, m in forecasters.items()))
    items = positions(dataset, Path(f"{world}_features_video"))
    from bench_script import predictors

    base = predictors(train_dataset, train_seqs, script)
    grounded_prefixes(items, dataset, segments, base["graph walk"].graphs, encoder)
    rows = forecasting_table(items, dataset, base, forecasters, script, encoder)
    targets(rows)
    recognition_table(dataset, Path(f"{world}_features_video"), train_dataset, Path(f"{TRAIN[0]}_features_video"),
                      forecasters["shipped"], encoder)
    print(f"\nforecasting and recognition: {time.perf_counter() - started:.0f} s")
    if not args.no_plan:
        planning_tables([])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
