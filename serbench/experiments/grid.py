"""The paper's grid of systems for one corpus, run where the store lacks them.

``make tables`` calls :func:`run_grid` and then renders the tables, so a re-run
only trains what is missing (or what an interrupted run left unfinished: each
runner resumes its own partial run).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from serbench.errors import SerbenchError
from serbench.experiments.store import RunStore

PAPER_FEATURES: tuple[str, ...] = ("PLP", "MFCC", "HuWSF", "IS09", "IS10")
PAPER_SEGMENTS: tuple[int, ...] = (1, 2, 3, 4, 5)
DEEP_MODELS: tuple[str, ...] = ("cnn-sru", "cnn", "sru")
#: The other seed papers' systems (issue 6): whole-utterance models, stored without -N.
OTHER_SYSTEMS: tuple[str, ...] = ("crnn", "crnn-ctc", "crnn-mk", "dcnn-blstm-att")


@dataclass(frozen=True)
class GridItem:
    """One system of the grid: its store name and the runner's keyword arguments."""

    system: str
    kind: str  # 'baseline' | 'deep'
    params: dict = field(default_factory=dict, hash=False)


@dataclass
class GridOutcome:
    system: str
    action: str  # 'present' | 'ran' | 'failed'
    detail: str = ""


def paper_grid(
    *,
    baselines: bool = True,
    features: Sequence[str] = PAPER_FEATURES,
    classifiers: Sequence[str] = ("svm-linear",),
    speaker_norm: Sequence[bool] = (False, True),
    deep: bool = True,
    segments: Sequence[int] = PAPER_SEGMENTS,
    deep_models: Sequence[str] = DEEP_MODELS,
    systems: Sequence[str] = (),
    deep_speaker_norm: Sequence[bool] = (False,),
) -> list[GridItem]:
    """The systems behind Tables I-V: SVM baselines (both normalization variants) and
    CNN+SRU with its CNN and SRU ablations at every N in ``segments``; then any of
    :data:`OTHER_SYSTEMS` named in ``systems`` (the systems table).

    ``deep_speaker_norm`` picks the normalization variants of every deep item: the paper's
    (``False``, the default) and/or per-speaker z-scored log-mel (``True``, stored with
    ``-spknorm``). Deep runs cost minutes to hours, so the second variant is opt-in.
    """
    from serbench.baselines.run import system_name
    from serbench.deep.run import SPKNORM_SUFFIX
    from serbench.deep.run import system_name as deep_system_name

    items: list[GridItem] = []
    if baselines:
        for feature in features:
            for classifier in classifiers:
                for norm in speaker_norm:
                    items.append(GridItem(system_name(feature, classifier, norm), "baseline",
                                          {"feature": feature, "classifier": classifier, "speaker_norm": norm}))
    if deep:
        bad = [n for n in segments if not 1 <= int(n) <= 5]
        if bad:
            raise SerbenchError(f"segments {bad}: the paper's N runs from 1 to 5")
        for model in deep_models:
            for n in segments:
                for norm in deep_speaker_norm:
                    items.append(GridItem(deep_system_name(model, int(n), norm), "deep",
                                          {"model": model, "segments": int(n), "speaker_norm": norm}))
    unknown = [m for m in systems if m not in OTHER_SYSTEMS]
    if unknown:
        raise SerbenchError(f"systems {unknown}: choose from {', '.join(OTHER_SYSTEMS)}")
    items += [GridItem(m + (SPKNORM_SUFFIX if norm else ""), "deep",
                       {"model": m, "segments": None, "speaker_norm": norm})
              for m in systems for norm in deep_speaker_norm]
    return items


def present_systems(corpus: str, runs: str | Path | None = None) -> set[str]:
    """Systems with at least one complete run of ``corpus`` in the store."""
    df = RunStore(runs).list_runs(corpus)
    if df.empty:
        return set()
    return set(df.loc[df["status"] == "complete", "system"].astype(str))


def run_grid(
    corpus: str,
    root: str | Path,
    items: Iterable[GridItem],
    *,
    cache: str | Path | None = None,
    runs: str | Path | None = None,
    jobs: int = 1,
    seed: int = 0,
    emotions: Sequence[str] | None = None,
    profile: str = "fast",
    device: str = "auto",
    pretrained: str | Path | None = None,
    force: bool = False,
    keep_going: bool = True,
    log: Callable[[str], None] = print,
) -> list[GridOutcome]:
    """Run every item whose system has no complete run of ``corpus`` yet (all of them with ``force``).

    A system counts as present whatever settings its run used; use ``force`` (or a
    fresh ``runs`` folder) after changing settings. With ``keep_going`` one failing
    system is reported and the rest still run.
    """
    items = list(items)
    have = set() if force else present_systems(corpus, runs)
    outcomes: list[GridOutcome] = []
    for i, item in enumerate(items, 1):
        if item.system in have:
            outcomes.append(GridOutcome(item.system, "present"))
            log(f"[{i}/{len(items)}] {item.system}: already in the store")
            continue
        log(f"[{i}/{len(items)}] {item.system}: running")
        try:
            if item.kind == "baseline":
                from serbench.baselines.run import run_baseline

                result = run_baseline(corpus, root, item.params["feature"], classifier=item.params["classifier"],
                                      speaker_norm=item.params["speaker_norm"], seed=seed, cache=cache,
                                      runs=runs, jobs=jobs, emotions=emotions)
            else:
                from serbench.deep.run import run_deep

                result = run_deep(corpus, root, segments=item.params["segments"], model=item.params["model"],
                                  profile=profile, device=device, pretrained=pretrained, seed=seed,
                                  cache=cache, runs=runs, jobs=jobs, emotions=emotions,
                                  speaker_norm=item.params.get("speaker_norm", False))
        except SerbenchError as exc:
            if not keep_going:
                raise
            outcomes.append(GridOutcome(item.system, "failed", str(exc)))
            log(f"    failed: {exc}")
            continue
        metrics = result.summary
        detail = (f"WA {100 * metrics['wa']:.1f} UA {100 * metrics['ua']:.1f}"
                  if "wa" in metrics and "ua" in metrics else "")
        outcomes.append(GridOutcome(item.system, "ran", detail))
        log(f"    done {detail}")
    return outcomes
