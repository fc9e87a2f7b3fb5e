"""Two synthetic corpora with a known shift, as feature tables (no audio): shared by the cross-corpus tests."""
from __future__ import annotations

import numpy as np
import pandas as pd

from serbench.corpora import MANIFEST_COLUMNS


def corpus_table(name_prefix: str, *, classes, n_speakers=4, per_class=6, n_features=6, offset=0.0, scale=1.0,
                 labels=None, seed=0, centers_seed=0, speaker_spread=0.5, noise=1.0):
    """``(X, manifest)``: class centres shared across corpora (``centers_seed``), per-speaker offsets,
    then the whole corpus shifted by ``offset`` and scaled by ``scale`` (a level/gain shift)."""
    centers = np.random.default_rng(centers_seed).normal(size=(8, n_features)) * 2.0
    order = ("angry", "happy", "neutral", "sad", "fear", "surprise", "boredom", "disgust")
    rng = np.random.default_rng(seed)
    rows, feats = [], []
    for s in range(n_speakers):
        spk_off = rng.normal(size=n_features) * speaker_spread
        for c in classes:
            for i in range(per_class):
                uid = f"{name_prefix}{s}_{c}_{i}"
                own = (labels or {}).get(c, c)
                rows.append({"utterance_id": uid, "path": f"/nowhere/{uid}.wav", "speaker": f"{name_prefix}{s}",
                             "gender": "f", "emotion": c, "label": own, "text_id": str(i), "session": pd.NA,
                             "duration": 1.0, "sample_rate": 16000})
                feats.append((centers[order.index(c)] + spk_off + rng.normal(size=n_features) * noise) * scale
                             + offset)
    manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS)).astype(MANIFEST_COLUMNS)
    manifest["status"], manifest["status_detail"] = "ok", ""
    X = pd.DataFrame(np.vstack(feats), index=pd.Index(manifest["utterance_id"], name="utterance_id"),
                     columns=[f"f{j}" for j in range(n_features)])
    return X, manifest


def loader_of(tables: dict, calls: list | None = None):
    """A ``load_features`` stand-in serving each corpus its table, keeping only the emotions asked for."""
    def load(corpus, feature, *, root, cache=None, jobs=1, emotions=None, **_):
        if calls is not None:
            calls.append((corpus, feature, tuple(emotions or ())))
        X, m = tables[corpus]
        if emotions:
            keep = m["emotion"].astype(str).isin(list(emotions)).to_numpy()
            m = m[keep].reset_index(drop=True)
            X = X.loc[m["utterance_id"].to_numpy()]
        return X.copy(), m.copy()
    return load


def two_corpora(offset=0.0, scale=1.0):
    """demo (angry/happy/neutral/sad) and casia (angry/fear/happy/neutral/sad, own codes, other speakers,
    shifted by ``offset`` and scaled by ``scale``)."""
    demo = corpus_table("d", classes=("angry", "happy", "neutral", "sad"), seed=1)
    casia = corpus_table("c", classes=("angry", "fear", "happy", "neutral", "sad"), seed=2, offset=offset,
                         scale=scale, labels={"angry": "W", "fear": "A", "happy": "F", "neutral": "N", "sad": "T"})
    return {"demo": demo, "casia": casia}
