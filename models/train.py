"""Train the beat classifier on DS1, select by patient-wise CV, test once on DS2.

    python -m models.dataset --data ../shared/data     # optional: builds the cache
    python -m models.train --data ../shared/data       # CV, final fit, DS2, export

Protocol (inter-patient, de Chazal et al., IEEE TBME 51(7), 2004):

1. **Selection on DS1 only.** Records are grouped into ``FOLDS`` folds
   (whole records, so no patient is in both sides of a fold). Each candidate
   configuration is trained on each fold's training records (at reference or
   detected beat positions, its ``beats``) and scored on the beats the
   service's streaming detector finds in the held-out records, labelled by
   the reference beat each matches (``models.dataset``): what the model
   sees in service. The configuration with the best mean over folds of
   SVEB F1 + VEB F1 wins, among those whose pooled out-of-fold predictions
   send at most ``MAX_N_TO_FQ`` of DS1's N beats to F or Q (an unscored
   class must not absorb normal beats for free).
2. **Decision biases.** On the winner's out-of-fold logits, per-class biases
   (added to the logits before argmax) for S and V are tuned by coordinate
   ascent for the same objective. N, F and Q stay at 0: the objective does not
   score F or Q, so tuning their offsets for it lets them absorb normal beats
   for free (an earlier run that tuned all four sent 9 % of DS1's N beats to Q
   out of fold, on the strength of 8 Q beats). They are folded into the last layer's bias,
   so the shipped graph's argmax already includes them.
3. **Final model** trained on all of DS1 with the winning configuration.
4. **DS2 once**, with reference beat positions, after every choice is made:
   VEB and SVEB Se/+P and the 5x5 confusion matrix are reported, not used.

Scores are one-class-versus-rest from the 5x5 confusion matrix (rows reference,
columns predicted): Se = TP / reference count, +P = TP / predicted count.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import time
from dataclasses import asdict, dataclass, replace
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from detect.beat_features import RR_FEATURES

from .aami import CLASSES, DS1, DS2
from .dataset import SOURCES, BeatSet, load_beats
from .net import BeatNet, fold_decision_bias

SEED = 20040701
FOLDS = 4
N, S, V, F, Q = (CLASSES.index(c) for c in "NSVFQ")
ALL_RR = tuple(range(len(RR_FEATURES)))
UPPER_RR = tuple(range(11))      # all but irregular_share (beat-cnn-4's inputs)


@dataclass(frozen=True, slots=True)
class Config:
    """One candidate: inputs, network width, class-weight strength, augmentation."""

    name: str
    width: int
    hidden: int
    weight_power: float      # class weight = (n_max / n_c) ** power, capped
    weight_cap: float
    template: bool = True    # compare each beat with the patient's running template
    jitter: int = 0          # train-time R-position jitter of the beat channel, +- samples
    scale: float = 0.0       # train-time beat amplitude scaling, factor in exp(+-scale)
    epochs: int = 12
    batch: int = 256
    lr: float = 2e-3
    rr_columns: tuple[int, ...] = tuple(range(9))   # which of RR_FEATURES the network uses
    s_from_rr: bool = False  # the S logit reads only RR context and beat-template similarity
    teachers: int = 0        # distil from this many networks of other seeds (0: plain fit)
    distill_alpha: float = 0.5   # weight of the teachers' mean probabilities in the target
    beats: str = "reference"     # training beats: "reference" or "detected" positions


# Earlier runs also compared t8-mid-jit, t8-sqrt-jit-e24, u8-sqrt-jit-e24,
# t8-srr-sqrt-jit-e24 and u8-srr-mid-jit-e24 (beat-cnn-4's selection table in
# models/README.md at 8dad420);
# none won, and dropping them keeps the reproducible run under half an hour.
CANDIDATES = (
    # beat-cnn-1's configuration: the beat alone, as the baseline.
    Config("w8-sqrt", width=8, hidden=32, weight_power=0.5, weight_cap=30.0, template=False),
    # beat-cnn-3's configuration: beat and template, nine RR features.
    Config("t8-sqrt-jit", width=8, hidden=32, weight_power=0.5, weight_cap=30.0, jitter=3),
    # beat-cnn-4's: the upper-RR features (the sinus-cycle estimate that ectopic
    # runs do not pull down), the S logit from the side branch only (timing and
    # beat-template similarity).
    Config("u8-srr-sqrt-jit-e24", width=8, hidden=32, weight_power=0.5, weight_cap=30.0,
           jitter=3, epochs=24, rr_columns=UPPER_RR, s_from_rr=True),
    # With the irregular share (atrial fibrillation is irregular at every lag,
    # bigeminy is not).
    Config("a8-srr-sqrt-jit-e24", width=8, hidden=32, weight_power=0.5, weight_cap=30.0,
           jitter=3, epochs=24, rr_columns=ALL_RR, s_from_rr=True),
    # The same network distilled from three others of other seeds. Their
    # average won the cross-validation (1.302 against 1.273) but cost 29 us per
    # beat, over the service's budget of 20 (its code, BeatEnsemble, is in the
    # history at bbe1f41); the student costs what one network costs. Another
    # base seed (--seed 7) scored a8 1.207 and d8 1.221: the seed moves the
    # objective by more than configurations differ, so the gain is small.
    Config("d8-srr-sqrt-jit-e24", width=8, hidden=32, weight_power=0.5, weight_cap=30.0,
           jitter=3, epochs=24, rr_columns=ALL_RR, s_from_rr=True, teachers=3),
    # The same, trained on the beats the streaming detector finds rather than on
    # the annotations: on wide or notched complexes its R position lies 30-100 ms
    # from the annotation (DS1: 208's ventricular beats, 114's), and its extra and
    # missed beats shape the RR context and template. beat-cnn-6, trained on the
    # annotations, lost 101 of DS1's V beats and gained 76 false V (45 false S)
    # that way, in sample (bench/reference_gap.py DS1). It lost the CV: 1.168
    # against 1.248 for the same configuration trained on annotations (seed 7:
    # 1.102 against 1.145).
    Config("d8-srr-sqrt-jit-e24-det", width=8, hidden=32, weight_power=0.5, weight_cap=30.0,
           jitter=3, epochs=24, rr_columns=ALL_RR, s_from_rr=True, teachers=3,
           beats="detected"),
)
# Also tried on DS1 only, not kept: an S logit linear in the side inputs
# (1.324 at the default seed, 1.137 at seed 7: no better than a8 once the
# seed moves), amplitude-scaling augmentation (1.229) and class-weight power
# 0.75 (1.140).
# A configuration whose out-of-fold predictions send more than this share of
# DS1's N beats to F or Q is not eligible: the objective does not score F or
# Q, so without this guard they can absorb normal beats for free.
MAX_N_TO_FQ = 0.02


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ---------------------------------------------------------------- scoring
def confusion(labels: npt.NDArray[np.int64], pred: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    k = len(CLASSES)
    return np.bincount(labels * k + pred, minlength=k * k).reshape(k, k)


def class_scores(cm: npt.NDArray[np.int64], c: int) -> dict[str, float]:
    tp = cm[c, c]
    ref, predicted = cm[c, :].sum(), cm[:, c].sum()
    se = tp / ref if ref else float("nan")
    ppv = tp / predicted if predicted else 0.0
    f1 = 2 * tp / (ref + predicted) if ref + predicted else 0.0
    return {"Se": float(se), "+P": float(ppv), "F1": float(f1), "n": int(ref)}


def ec57(cm: npt.NDArray[np.int64]) -> dict[str, dict[str, float]]:
    return {"VEB": class_scores(cm, V), "SVEB": class_scores(cm, S)}


def objective(cm: npt.NDArray[np.int64]) -> float:
    """Selection score: SVEB F1 + VEB F1."""
    return class_scores(cm, S)["F1"] + class_scores(cm, V)["F1"]


# ---------------------------------------------------------------- training
def class_weights(labels: npt.NDArray[np.int64], cfg: Config) -> torch.Tensor:
    counts = np.bincount(labels, minlength=len(CLASSES)).astype(float)
    w = np.where(counts > 0, (counts.max() / np.maximum(counts, 1)) ** cfg.weight_power, 1.0)
    return torch.tensor(np.minimum(w, cfg.weight_cap), dtype=torch.float32)


def augmented(win: torch.Tensor, cfg: Config, gen: torch.Generator) -> torch.Tensor:
    """The beat channel moved by up to +-``cfg.jitter`` samples (edge samples
    repeat), as the R-peak detector's positions differ from the reference
    annotations, and scaled by a factor in exp(+-``cfg.scale``), as amplitude
    normalisation lags a change of amplitude. The template is left alone."""
    if cfg.jitter == 0 and cfg.scale == 0.0:
        return win
    n, _, length = win.shape
    beat = win[:, 0]
    if cfg.jitter:
        s = torch.randint(-cfg.jitter, cfg.jitter + 1, (n, 1), generator=gen)
        idx = torch.clamp(torch.arange(length)[None, :] + s, 0, length - 1)
        beat = torch.gather(beat, 1, idx)
    if cfg.scale:
        beat = beat * torch.exp((torch.rand((n, 1), generator=gen) * 2 - 1) * cfg.scale)
    return torch.cat([beat[:, None], win[:, 1:]], dim=1)


def fit(train: BeatSet, cfg: Config, seed: int) -> BeatNet:
    """One network; with ``cfg.teachers``, distilled from that many networks of
    other seeds (Hinton, Vinyals & Dean, "Distilling the knowledge in a neural
    network", 2015): the student's target mixes the reference label with the
    teachers' mean probabilities, so one network of the service's size learns
    what an average over seeds knows, and its decisions depend less on the seed."""
    if not cfg.teachers:
        return _fit_one(train, cfg, seed, None)
    plain = replace(cfg, teachers=0)
    nets = [_fit_one(train, plain, seed + 1000 * (k + 1), None) for k in range(cfg.teachers)]
    with torch.no_grad():
        soft = sum(torch.softmax(torch.from_numpy(logits(n, train)), 1) for n in nets)
    return _fit_one(train, plain, seed, soft / cfg.teachers, cfg.distill_alpha)


def _fit_one(train: BeatSet, cfg: Config, seed: int, soft: torch.Tensor | None,
             alpha: float = 0.0) -> BeatNet:
    seed_everything(seed)
    net = BeatNet(cfg.width, cfg.hidden, cfg.template, cfg.rr_columns, cfg.s_from_rr)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    weight = class_weights(train.labels, cfg)
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    win = torch.from_numpy(train.windows)
    rr = torch.from_numpy(train.rr)
    y = torch.from_numpy(train.labels)
    steps = cfg.epochs * -(-len(train) // cfg.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(len(train), generator=gen)
        for i in range(0, len(train), cfg.batch):
            b = order[i:i + cfg.batch]
            opt.zero_grad()
            out = net(augmented(win[b], cfg, gen), rr[b])
            if soft is None:
                loss = loss_fn(out, y[b])
            else:
                # The weighted mean of CrossEntropyLoss, with a mixed target.
                target = (1 - alpha) * nn.functional.one_hot(y[b], len(CLASSES)) + alpha * soft[b]
                w = weight[y[b]]
                loss = (w * -(target * torch.log_softmax(out, 1)).sum(1)).sum() / w.sum()
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


@torch.no_grad()
def logits(net: BeatNet, beats: BeatSet) -> npt.NDArray[np.float32]:
    out = [net(torch.from_numpy(beats.windows[i:i + 4096]),
               torch.from_numpy(beats.rr[i:i + 4096])).numpy()
           for i in range(0, len(beats), 4096)]
    return np.concatenate(out)


def record_folds(beats: BeatSet, records: tuple[str, ...], k: int) -> list[tuple[str, ...]]:
    """Whole records into ``k`` folds, dealt in snake order of their S then V counts.

    S beats sit in few DS1 records (209 holds ~40 %), so dealing by count keeps
    every fold with some of each ectopic class.
    """
    def key(r: str) -> tuple[int, int]:
        lab = beats.labels[beats.records == r]
        return (int((lab == S).sum()), int((lab == V).sum()))
    ordered = sorted(records, key=key, reverse=True)
    folds: list[list[str]] = [[] for _ in range(k)]
    for i, r in enumerate(ordered):
        j = i % (2 * k)
        folds[j if j < k else 2 * k - 1 - j].append(r)
    return [tuple(sorted(f)) for f in folds]


# Training and held-out beat sets of the cross-validation, set in the parent
# before the pool forks, so its fold tasks read them without pickling.
_CV_SETS: dict[str, BeatSet] = {}


def cross_validate(sets: dict[str, BeatSet], folds: list[tuple[str, ...]],
                   configs: tuple[Config, ...], seed: int = SEED, jobs: int = 1
                   ) -> dict[str, tuple[npt.NDArray[np.float32], list[dict]]]:
    """Out-of-fold logits (on ``sets["detected"]``) and per-fold scores per config.

    Every (config, fold) is one task, seeded by itself and run with the caller's
    torch thread count, so the result does not depend on ``jobs`` (processes)
    or on the order tasks run.
    """
    _CV_SETS.clear()
    _CV_SETS.update(sets)
    tasks = [(cfg, i, held, seed) for cfg in configs for i, held in enumerate(folds)]
    if jobs > 1:
        threads = torch.get_num_threads()
        with Pool(jobs, initializer=torch.set_num_threads, initargs=(threads,)) as pool:
            done = pool.starmap(_fold_task, tasks)
    else:
        done = [_fold_task(*t) for t in tasks]
    held_out = sets["detected"]
    out = {}
    for cfg in configs:
        oof = np.zeros((len(held_out), len(CLASSES)), dtype=np.float32)
        per_fold = []
        for (c, i, held, _), (z, fold) in zip(tasks, done):
            if c.name == cfg.name:
                oof[np.isin(held_out.records, held)] = z
                per_fold.append(fold)
                print(f"  {cfg.name} fold {i}: objective {fold['objective']:.3f} "
                      f"SVEB {fold['SVEB']} VEB {fold['VEB']}", flush=True)
        out[cfg.name] = (oof, per_fold)
    return out


def _fold_task(cfg: Config, i: int, held: tuple[str, ...], seed: int
               ) -> tuple[npt.NDArray[np.float32], dict]:
    train = _CV_SETS[cfg.beats]
    test = _CV_SETS["detected"].subset(np.isin(_CV_SETS["detected"].records, held))
    net = fit(train.subset(~np.isin(train.records, held)), cfg, seed + i)
    z = logits(net, test)
    cm = confusion(test.labels, z.argmax(1))
    return z, {"records": list(held), **ec57(cm), "objective": objective(cm)}


TUNED = (S, V)             # classes whose decision bias is tuned; the rest stay 0


def tune_biases(z: npt.NDArray[np.float32], labels: npt.NDArray[np.int64],
                rounds: int = 3) -> npt.NDArray[np.float32]:
    """Coordinate ascent over the S and V logit offsets for :func:`objective`."""
    bias = np.zeros(len(CLASSES), dtype=np.float32)
    grid = np.arange(-6.0, 6.01, 0.25, dtype=np.float32)
    best = objective(confusion(labels, (z + bias).argmax(1)))
    for _ in range(rounds):
        for c in TUNED:
            for g in grid:
                trial = bias.copy()
                trial[c] = g
                score = objective(confusion(labels, (z + trial).argmax(1)))
                if score > best + 1e-9:
                    best, bias = score, trial
    return bias


def _mean(folds: list[dict], group: str, key: str) -> float:
    return float(np.nanmean([f[group][key] for f in folds]))


def git_head() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", default="out")
    ap.add_argument("--models", default=str(Path(__file__).resolve().parent))
    ap.add_argument("--candidates", nargs="*", metavar="NAME",
                    help="cross-validate only these configurations (exploration; the "
                         "reproducible run compares them all)")
    ap.add_argument("--cv-only", action="store_true",
                    help="stop after model selection on DS1: no final fit, no DS2, no export")
    ap.add_argument("--seed", type=int, default=SEED,
                    help="base seed of the cross-validation and final fits (another seed "
                         "shows how much of a difference between configurations is luck)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (results are reproducible for a given count)")
    ap.add_argument("--jobs", type=int, default=2,
                    help="processes for the cross-validation's (config, fold) fits, each "
                         "with --threads threads (the result does not depend on it)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t_start = time.time()
    commit = git_head()                      # the code this run trains with
    out = Path(args.out)
    sets = {source: load_beats(args.data, DS1, out, source=source) for source in SOURCES}
    # Held-out beats are always the detected ones: the service's.
    ds1 = sets["detected"]

    # 1. Model selection on DS1, patient-wise.
    folds = record_folds(sets["reference"], DS1, FOLDS)
    cv: dict[str, dict] = {}
    oofs: dict[str, npt.NDArray[np.float32]] = {}
    candidates = tuple(c for c in CANDIDATES if not args.candidates or c.name in args.candidates)
    results = cross_validate(sets, folds, candidates, args.seed, args.jobs)
    for cfg in candidates:
        oofs[cfg.name], per_fold = results[cfg.name]
        cv[cfg.name] = {"config": asdict(cfg), "folds": per_fold,
                        "mean_objective": float(np.mean([f["objective"] for f in per_fold])),
                        "mean": {g: {k: _mean(per_fold, g, k) for k in ("Se", "+P", "F1")}
                                 for g in ("VEB", "SVEB")}}
        print(f"{cfg.name}: CV mean objective {cv[cfg.name]['mean_objective']:.3f}", flush=True)
    for cfg in candidates:
        cm = confusion(ds1.labels, oofs[cfg.name].argmax(1))
        cv[cfg.name]["oof_n_to_fq"] = float(cm[N, [F, Q]].sum() / max(cm[N].sum(), 1))
        cv[cfg.name]["eligible"] = cv[cfg.name]["oof_n_to_fq"] <= MAX_N_TO_FQ
    eligible = [c for c in candidates if cv[c.name]["eligible"]]
    if not eligible:
        raise SystemExit(f"No configuration keeps DS1's N beats out of F and Q "
                         f"(limit {MAX_N_TO_FQ:.0%}); see the CV figures above.")
    chosen = max(eligible, key=lambda c: cv[c.name]["mean_objective"])
    # The chosen configuration's out-of-fold logits, for analyses on DS1 alone
    # (bench/af_veto_oof.py), in the beat order of load_beats(DS1, source="detected").
    np.save(out / "oof_logits.npy", oofs[chosen.name])
    # 2. Decision biases from the winner's out-of-fold logits.
    bias = tune_biases(oofs[chosen.name], ds1.labels)
    if args.cv_only:
        (out / "cv_report.json").write_text(json.dumps(
            {"cv": cv, "chosen": chosen.name, "decision_bias": bias.tolist()}, indent=2))
        print(render_cv(cv, chosen.name))
        return

    oof_cm_raw = confusion(ds1.labels, oofs[chosen.name].argmax(1))
    oof_cm = confusion(ds1.labels, (oofs[chosen.name] + bias).argmax(1))

    # 3. Final fit on all of DS1, biases folded in.
    net = fit(sets[chosen.beats], chosen, args.seed)
    fold_decision_bias(net, torch.from_numpy(bias))

    # 4. DS2, once, with reference beats.
    ds2 = load_beats(args.data, DS2, out)
    ds2_cm = confusion(ds2.labels, logits(net, ds2).argmax(1))

    from .export import export_onnx
    models = Path(args.models)
    torch.save(net.state_dict(), models / "beat_classifier.pt")
    export_onnx(net, models / "beat_classifier.onnx", commit)

    report = {
        "classes": list(CLASSES), "seed": args.seed, "folds": [list(f) for f in folds],
        "cv": cv, "chosen": chosen.name, "decision_bias": bias.tolist(),
        "ds1_oof_argmax": {**ec57(oof_cm_raw), "confusion": oof_cm_raw.tolist()},
        "ds1_oof_with_bias": {**ec57(oof_cm), "confusion": oof_cm.tolist()},
        "ds1_oof_records": record_errors(ds1, (oofs[chosen.name] + bias).argmax(1)),
        "ds2_reference_beats": {**ec57(ds2_cm), "confusion": ds2_cm.tolist()},
        "n_beats": {"DS1": len(ds1), "DS2": len(ds2)},
        "parameters": sum(p.numel() for p in net.parameters()),
        "training_commit": commit, "seconds": round(time.time() - t_start, 1),
    }
    (out / "train_report.json").write_text(json.dumps(report, indent=2))
    (out / "train_report.md").write_text(render_markdown(report))
    print(render_markdown(report))


def record_errors(beats: BeatSet, pred: npt.NDArray[np.int64]) -> dict[str, dict[str, int]]:
    """Per record: S and V reference beats, hits and false labels (where the errors live)."""
    out = {}
    for r in dict.fromkeys(beats.records.tolist()):
        m = beats.records == r
        lab, p = beats.labels[m], pred[m]
        out[r] = {f"{k}{c}": int(v) for c, i in (("S", S), ("V", V)) for k, v in (
            ("n", (lab == i).sum()), ("tp", ((lab == i) & (p == i)).sum()),
            ("fp", ((lab != i) & (p == i)).sum()))}
    return out


def _pct(x: float) -> str:
    return "n/a" if np.isnan(x) else f"{100 * x:.1f}"


def render_cv(cv: dict, chosen: str) -> str:
    lines = ["## Cross-validation on DS1 (4 record-wise folds, argmax, no biases)", "",
             "| config | SVEB Se | SVEB +P | VEB Se | VEB +P | N to F/Q | mean SVEB F1 + VEB F1 |",
             "|---|---|---|---|---|---|---|"]
    for name, c in cv.items():
        m = c["mean"]
        tag = " (chosen)" if name == chosen else ("" if c["eligible"] else " (not eligible)")
        lines.append(f"| {name}{tag} | {_pct(m['SVEB']['Se'])} | {_pct(m['SVEB']['+P'])} | "
                     f"{_pct(m['VEB']['Se'])} | {_pct(m['VEB']['+P'])} | "
                     f"{_pct(c['oof_n_to_fq'])} | {c['mean_objective']:.3f} |")
    lines += ["", "Fold means of per-fold percentages; N to F/Q is the pooled out-of-fold "
              f"share of N beats called F or Q (eligible up to {100 * MAX_N_TO_FQ:.0f} %).", ""]
    return "\n".join(lines)


def render_markdown(r: dict) -> str:
    lines = [render_cv(r["cv"], r["chosen"]),
             "## Pooled out-of-fold DS1, chosen config", "",
             "| | SVEB Se | SVEB +P | VEB Se | VEB +P |", "|---|---|---|---|---|"]
    for key, label in (("ds1_oof_argmax", "argmax"),
                       ("ds1_oof_with_bias", "with decision biases*")):
        e = r[key]
        lines.append(f"| {label} | {_pct(e['SVEB']['Se'])} | {_pct(e['SVEB']['+P'])} | "
                     f"{_pct(e['VEB']['Se'])} | {_pct(e['VEB']['+P'])} |")
    ds2 = r["ds2_reference_beats"]
    headline = (f"SVEB Se {_pct(ds2['SVEB']['Se'])} %, +P {_pct(ds2['SVEB']['+P'])} %; "
                f"VEB Se {_pct(ds2['VEB']['Se'])} %, +P {_pct(ds2['VEB']['+P'])} %")
    lines += ["", "*Biases were tuned on these same out-of-fold logits, so this row is optimistic.",
              f"Decision biases (N S V F Q): {', '.join(f'{b:+.2f}' for b in r['decision_bias'])}",
              "", "Out of fold, with the biases, per record: S beats, found, false S; V beats, "
              "found, false V", "", "| record | nS | tpS | fpS | nV | tpV | fpV |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    keys = ("nS", "tpS", "fpS", "nV", "tpV", "fpV")
    lines += [f"| {rec} | " + " | ".join(str(e[k]) for k in keys) + " |"
              for rec, e in r["ds1_oof_records"].items()]
    lines += ["", "## DS2 (held-out patients, reference beat positions), evaluated once", "",
              headline, "",
              "| reference \\ predicted | " + " | ".join(r["classes"]) + " |",
              "|---" * (len(r["classes"]) + 1) + "|"]
    for c, row in zip(r["classes"], r["ds2_reference_beats"]["confusion"]):
        lines.append(f"| {c} | " + " | ".join(str(v) for v in row) + " |")
    lines += ["", (f"Beats: DS1 {r['n_beats']['DS1']}, DS2 {r['n_beats']['DS2']}; "
                   f"parameters {r['parameters']}; training commit {r['training_commit']}; "
                   f"{r['seconds']} s."), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
