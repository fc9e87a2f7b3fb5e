"""The speaker-normalized batch check: random subsets of a speaker's inputs, drawn from their contents,
so its verdict does not depend on the order the inputs were given in."""
from __future__ import annotations

import random

import numpy as np

from serbench.bundles import speaker_norm
from serbench.bundles.units import Unit




def verdict(df):
    return dict(zip(df.file, df.batch_stable.tolist())), dict(zip(df.file, df.emotion))


def units(values):
    return [Unit(source=i, segment="file", value=v) for i, v in enumerate(values)]


def test_subsets_depend_on_the_contents_only_and_hold_every_input():
    rng = np.random.default_rng(3)
    values = [rng.standard_normal(5) for _ in range(45)]
    m, subsets, ids = speaker_norm._subsets(units(values))
    order = list(range(45))
    random.Random(1).shuffle(order)
    m2, subsets2, ids2 = speaker_norm._subsets(units([values[i] for i in order]))
    as_ids = [sorted(ids[i] for i in s) for s in subsets]
    assert m == m2 == 23 and len(subsets) == 2 * speaker_norm.BATCH_ORDERS
    assert as_ids == [sorted(ids2[i] for i in s) for s in subsets2]          # the same subsets, by content
    held = np.bincount([i for s in subsets for i in s], minlength=45)
    assert held.min() >= speaker_norm.BATCH_ORDERS and all(len(s) == m for s in subsets)
    assert len({tuple(s) for s in as_ids}) == len(subsets)                   # no subset drawn twice
    m20, subsets20, _ = speaker_norm._subsets(units(values[:20]))
    assert m20 == speaker_norm.MIN_SPEAKER_INPUTS - 1 and all(len(s) == 19 for s in subsets20)


def test_a_balanced_batch_sorted_by_emotion_is_stable(trained, tmp_path, spk_files):
    """20 sad then 20 angry: first and last halves would be one emotion each (every file moved); random
    halves are mixed, so no file changes emotion."""
    model = trained("svm-spknorm")
    files = spk_files(tmp_path, "sad", 20) + spk_files(tmp_path, "angry", 20)
    df = model.predict(files, speakers="zoe")
    assert (df.status == "ok").all() and set(df.emotion) == {"angry", "sad"}
    assert df.batch_stable.all() and not [w for w in df.attrs["warnings"] if "change emotion" in w]


def test_the_verdict_does_not_depend_on_the_input_order(trained, tmp_path, spk_files):
    """An unbalanced batch (some files unstable) given sorted by emotion and shuffled: the same files
    are flagged, with the same emotions, and the same warning once its file list is sorted."""
    model = trained("svm-spknorm")
    files = spk_files(tmp_path, "angry", 20, start=40) + spk_files(tmp_path, "sad", 3)
    shuffled = list(files)
    random.Random(7).shuffle(shuffled)
    assert shuffled != files
    a, b = model.predict(files, speakers="zoe"), model.predict(shuffled, speakers="zoe")
    assert verdict(a) == verdict(b)
    assert not a.batch_stable.all()                     # the check has something to agree on
    wa, wb = ([w for w in df.attrs["warnings"] if "change emotion" in w] for df in (a, b))
    assert len(wa) == len(wb) == 1
    flagged = set(a.file[~a.batch_stable])
    assert wa[0].startswith(f"speaker 'zoe': {len(flagged)} of 23 input(s) change emotion")
    assert wb[0].startswith(f"speaker 'zoe': {len(flagged)} of 23 input(s) change emotion")


def test_a_tiny_batch_of_mostly_one_emotion_is_flagged(trained, tmp_path, spk_files):
    """20 angry files and 3 sad ones: the speaker's statistics are mostly the angry files', which then sit
    near the decision boundary; dropping 3 of the 23 moves some of them, and the call warns."""
    model = trained("svm-spknorm")
    files = spk_files(tmp_path, "angry", 20, start=40) + spk_files(tmp_path, "sad", 3)
    df = model.predict(files, speakers="zoe")
    warned = [w for w in df.attrs["warnings"] if w.startswith("speaker 'zoe'")]
    assert len(warned) == 1 and "come from 20 of its inputs instead of all 23" in warned[0]
    assert "8 random subsets" in warned[0] and "(column batch_stable)" in warned[0]
    assert 0 < (~df.batch_stable).sum() < len(df)
    for f, e in zip(df.file[~df.batch_stable], df.emotion[~df.batch_stable]):
        assert f"{f}: {e} -> " in warned[0] or "more)" in warned[0]


def test_identical_inputs_share_one_verdict(trained, tmp_path, spk_files):
    model = trained("svm-spknorm")
    files = spk_files(tmp_path, "angry", 20, start=40) + spk_files(tmp_path, "sad", 3)
    twin = tmp_path / "twin.wav"
    twin.write_bytes(files[0].read_bytes())
    df = model.predict(files + [twin], speakers="zoe")
    assert df.batch_stable.iloc[0] == df.batch_stable.iloc[-1] and df.emotion.iloc[0] == df.emotion.iloc[-1]
