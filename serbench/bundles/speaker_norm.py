"""Per-speaker normalized bundles at prediction time: the speaker of every input, the minimum number of
inputs per speaker, and the check that an input's emotion does not hang on which of its speaker's inputs
were given together (:func:`batch_check`).
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from serbench.bundles.options import PredictError
from serbench.bundles.sources import Source
from serbench.bundles.units import Unit, model_output

#: What the functions here take as ``model``: a :class:`serbench.bundles.model.Model` (not imported:
#: model.py imports the prediction modules).
Model = Any

#: A per-speaker normalized bundle needs at least this many usable inputs of each speaker.
#: Measured by hand on CASIA (4 speakers x 300 files) and EMO-DB cut to 2 s (10 speakers x
#: 35-71 files) with an IS10 ``svm-linear --speaker-norm`` trained on all but one speaker: the
#: held-out speaker's files predicted with statistics from k random files of it (the predicted
#: files among them, 30 draws per speaker and k) against all of its files. Agreement with the
#: all-file labels, CASIA / EMO-DB: k=2 0.44/0.46, 3 0.60/0.62, 5 0.71/0.71, 8 0.78/0.81,
#: 10 0.79/0.84, 15 0.81/0.89, 20 0.83/0.91, 30 0.87/0.94, 50 0.91/0.97; accuracy (all files:
#: 0.559/0.809): k=2 0.35/0.42, 5 0.51/0.63, 10 0.52/0.74, 15 0.53/0.78, 20 0.56/0.78, 30
#: 0.55/0.80. At 20 the accuracy has reached its all-file level on CASIA and its plateau on
#: EMO-DB (15 -> 20 -> 30: 0.78, 0.78, 0.80), and 83-91% of labels agree with all-file
#: statistics (10th percentile of draws: 0.70/0.80); below 10 both fall fast. Labels still
#: move at 20, hence :func:`batch_check` on every call.
MIN_SPEAKER_INPUTS = 20
#: :func:`batch_check`: the speaker's inputs are put in this many seeded random orders, each split into its first
#: and its last part (two subsets), so every input lies in between BATCH_ORDERS and twice as many subsets.
BATCH_ORDERS = 4
#: :func:`batch_check`: an input is unstable when its emotion under a subset's statistics differs from its emotion
#: with all the speaker's inputs in at least this share of the subsets holding it. Measured by hand with the demo
#: bundle (`make demo`: IS10 svm-linear --speaker-norm) on the demo corpus's spk1m (48 files, 12 per emotion):
#: over 400 random halves one file changes emotion in 22% of them, one in 14%, one in 2%, the other 45 never.
#: Over 100 seeds of the check, a quarter names 1.2 files on average there (at most 3; the first and last
#: halves of the emotion-sorted folder named 23), no file of a balanced 10 + 10 batch of the test bundle
#: (MFCC), and warns about 20 files of one emotion plus 2, 3 or 5 of another in 80, 100 and 75% of seeds (a
#: half: 25, 79, 28%). A file in 4 subsets is thus named for one change: the point is to warn where the batch
#: is lopsided, where such changes are common, and MIN_SPEAKER_INPUTS's measurement puts the average change of
#: random 20-input batches at 9-17% of labels, below a quarter.
UNSTABLE_SHARE = 0.25

SPEAKER_NORM_HELP = ("was trained with per-speaker normalization: each speaker's inputs are z-scored with that "
                     "speaker's own statistics, which need several recordings of the same speaker, so single files "
                     "cannot be normalized. Give the speaker of the inputs (--speaker NAME for all of them, "
                     "--speaker-folder N, a corpus with --corpus/--root, or speakers= in Python), or --window S "
                     "to normalize each file with its own windows")



def _unit_name(src: Source, u: Unit) -> str:
    return src.name if u.segment != "window" else f"{src.name} [{u.start_s:.2f}-{u.end_s:.2f} s]"


def _identity(value: Any) -> bytes:
    """A digest of a model input's content: what orders a speaker's inputs whatever order they came in."""
    a = np.ascontiguousarray(value)
    return hashlib.sha256(f"{a.dtype}{a.shape}".encode() + a.tobytes()).digest()


def _subsets(group: list[Unit]) -> tuple[int, list[list[int]], list[bytes]]:
    """``(m, subsets, identities)`` of one speaker's ``n`` inputs: :data:`BATCH_ORDERS` random orders of them,
    each giving its first ``m`` and its last ``m`` (positions in ``group``).

    The orders are drawn from the inputs sorted by content, with a seed made of those contents, so they
    are the same whatever order the inputs were given in and on every run.
    """
    n = len(group)
    ids = [_identity(u.value) for u in group]
    canonical = sorted(range(n), key=lambda i: ids[i])
    seed = hashlib.sha256(b"".join(ids[i] for i in canonical)).digest()
    rng = np.random.default_rng(int.from_bytes(seed[:8], "little"))
    m = n - max(1, min(n - MIN_SPEAKER_INPUTS, n // 2))
    subsets = []
    for _ in range(BATCH_ORDERS):
        order = [canonical[i] for i in rng.permutation(n)]
        subsets += [order[:m], order[n - m:]]
    return m, subsets, ids


def batch_check(model: Model, units: list[Unit], speakers: list[str], sources: list[Source],
                threads: int | None, kind: str) -> list[str]:
    """Per-speaker normalized bundles: does an input's emotion change with the other inputs given with it?

    ``units`` are scored with the statistics of all their speaker's inputs. Each speaker's ``n``
    inputs are also put in :data:`BATCH_ORDERS` random orders and each order split as two smaller
    calls of ``predict`` would get it: its first ``m`` and its last ``m`` inputs, ``m = n - q``,
    ``q = max(1, min(n - MIN_SPEAKER_INPUTS, n // 2))`` (halves when there are many; never fewer than
    ``MIN_SPEAKER_INPUTS - 1``): ``2 * BATCH_ORDERS`` subsets, each input in at least ``BATCH_ORDERS``
    of them. Each input is predicted again with the statistics of each subset it lies in (the
    features are not computed again: one more call of the system per order, over at most twice the
    inputs). The orders depend only on the inputs' contents (:func:`_subsets`), so the verdict does
    not depend on the order the inputs were given in, nor on the run; identical inputs share one.
    An input whose emotion differs in at least :data:`UNSTABLE_SHARE` of the subsets holding it gets
    ``stable=False``; every speaker with such inputs gets one warning line naming a few of them.
    Returns the warnings.

    What it cannot see: a skew that all the inputs share. A speaker given only angry recordings
    is normalized as if angry were that speaker's neutral, and the check, comparing the call with
    subsets of itself, finds them consistent (a file predicted angry among its speaker's mixed
    recordings can come out sad among 19 other angry ones, with no warning in that call; the
    call holding both sets warns). Hence the minimum and the advice to give a mix of emotions.
    """
    groups: dict[str, list[Unit]] = {}
    for u in units:
        groups.setdefault(speakers[u.source], []).append(u)
    plans = {}
    for spk, group in groups.items():
        for u in group:
            u.stable = True
        if len(group) >= 2:
            plans[spk] = _subsets(group)
    if not plans:
        return []
    labels = list(model.labels)
    # Per speaker and input content: subsets holding it, and how often each other emotion came out.
    held: dict[tuple[str, bytes], int] = {}
    moved: dict[tuple[str, bytes], dict[int, int]] = {}
    for r in range(BATCH_ORDERS):
        values, keys, owners = [], [], []
        for spk, (_m, subsets, ids) in plans.items():
            for part in (2 * r, 2 * r + 1):
                for i in subsets[part]:
                    values.append(groups[spk][i].value)
                    keys.append(f"{spk}\x00{part}")   # each subset normalized with its own statistics
                    owners.append((spk, i))
        _, decided = model_output(model, values, keys, threads, kind)
        for (spk, i), d in zip(owners, decided):
            key = (spk, plans[spk][2][i])
            held[key] = held.get(key, 0) + 1
            if int(d) != groups[spk][i].predicted:
                counts = moved.setdefault(key, {})
                counts[int(d)] = counts.get(int(d), 0) + 1
    out = []
    for spk, (m, subsets, ids) in plans.items():
        group = groups[spk]
        flagged = []
        for u, ident in zip(group, ids):
            changes = moved.get((spk, ident), {})
            if sum(changes.values()) >= UNSTABLE_SHARE * held[(spk, ident)]:
                u.stable = False
                flagged.append((u, max(changes, key=lambda c: (changes[c], -c))))
        if not flagged:
            continue
        n = len(group)
        shown = [f"{_unit_name(sources[u.source], u)}: {labels[u.predicted]} -> {labels[d]}" for u, d in flagged[:3]]
        more = f" and {len(flagged) - 3} more" if len(flagged) > 3 else ""
        out.append(f"speaker {spk!r}: {len(flagged)} of {n} input(s) change emotion when the speaker's statistics "
                   f"come from {m} of its inputs instead of all {n} (in at least {UNSTABLE_SHARE:.0%} of "
                   f"{len(subsets)} random subsets holding them: {'; '.join(shown)}{more}); with per-speaker "
                   "normalization a prediction depends on which recordings of the speaker are given together: give "
                   "more of them, with a mix of emotions (column batch_stable)")
    return out


def speakers_of(sources: list[Source], model: Model, window: float | None) -> list[str]:
    if not model.speaker_norm:
        return [s.speaker or s.name for s in sources]
    missing = [s.name for s in sources if s.speaker is None]
    if missing and len(missing) < len(sources):
        raise PredictError(f"{len(missing)} input(s) have no speaker (e.g. {missing[0]}); model {model.name} "
                           "normalizes per speaker: give every input's speaker")
    if missing and not window:
        raise PredictError(f"model {model.name} {SPEAKER_NORM_HELP}")
    spk = [s.speaker or s.name for s in sources]
    if not window:
        from collections import Counter

        few = [(name, c) for name, c in Counter(spk).items() if c < MIN_SPEAKER_INPUTS]
        if few:
            listed = ", ".join(f"{name!r} has {c}" for name, c in few[:5]) + (
                f" (and {len(few) - 5} more speakers)" if len(few) > 5 else "")
            raise PredictError(f"model {model.name} normalizes per speaker and needs at least {MIN_SPEAKER_INPUTS} "
                               f"inputs of each speaker (with fewer, the statistics and so the emotions change with "
                               f"the batch): speaker {listed}; give more recordings of each speaker, or use a bundle "
                               "trained without --speaker-norm")
    return spk


def enough_per_speaker(units: list[Unit], speakers: list[str]) -> list[Unit]:
    """Mark the inputs of speakers with fewer than MIN_SPEAKER_INPUTS usable inputs failed; return the rest."""
    from collections import Counter

    ok = [u for u in units if u.status == "ok" and u.segment != "summary"]
    counts = Counter(speakers[u.source] for u in ok)
    keep = []
    for u in ok:
        c = counts[speakers[u.source]]
        if c < MIN_SPEAKER_INPUTS:
            u.status, u.value = "failed", None
            u.error = (f"speaker {speakers[u.source]!r} has {c} usable input(s); per-speaker normalization needs at "
                       f"least {MIN_SPEAKER_INPUTS} of the same speaker")
        else:
            keep.append(u)
    return keep
