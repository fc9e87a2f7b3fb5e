"""A deep system across corpora: the log-mel branch of the cross-corpus path, end to end on audio."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from serbench.experiments.store import load_run
from serbench.features import CorpusHandle
from serbench.systems.cross import plan_cross, run_cross

SR = 16000


def write_emodb_layout(root: Path, speakers=("03", "08"), texts=("a01", "a02")) -> Path:
    """EMO-DB-named files (``wav/03a01Wa.wav``) of the same angry/sad tones as the demo-layout corpus."""
    rng = np.random.default_rng(1)
    (root / "wav").mkdir(parents=True)
    for s, shift in zip(speakers, (1.05, 0.95)):
        for code, angry in (("W", True), ("T", False)):
            for k, text in enumerate(texts):
                t = np.arange(SR) / SR
                f0 = (260.0 if angry else 110.0) * shift * (1 + 0.03 * k)
                x = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, (8 if angry else 2) + 1))
                x = (0.5 if angry else 0.1) * x / np.max(np.abs(x)) + 0.005 * rng.standard_normal(t.size)
                sf.write(root / "wav" / f"{s}{text}{code}a.wav", x.astype(np.float32), SR)
    return root


def test_cnn_trains_on_one_corpus_and_predicts_another(tmp_path, emotion_corpus):
    demo = emotion_corpus(tmp_path / "demo", [1.0, 1.2])
    emodb = write_emodb_layout(tmp_path / "emodb")
    corpora = [CorpusHandle.of(name, root, cache=tmp_path / "cache") for name, root in (("demo", demo),
                                                                                          ("emodb", emodb))]
    plan = plan_cross(corpora, systems=[("cnn", {"segments": 1})], profile="tiny", diagonal=False)
    assert plan.emotions == ["angry", "sad"]
    outcomes = run_cross(plan, runs=tmp_path / "runs", threads=1, log=lambda _m: None)
    assert [o.action for o in outcomes] == ["ran", "ran"], [o.detail for o in outcomes]
    for o in outcomes:
        run = load_run(o.path)
        cell = o.planned
        test_ids = sorted(CorpusHandle.of(cell.test, demo if cell.test == "demo" else emodb).manifest["utterance_id"])
        assert run.record["config"]["protocol"] == f"cross:{cell.train}->{cell.test}"
        assert run.record["config"]["identity"]["hash"] == cell.hash
        # every test-corpus utterance predicted once, by the one fold, with a shared emotion
        assert sorted(run.predictions["utterance_id"]) == test_ids
        assert set(run.predictions["fold"]) == {f"{cell.train}->{cell.test}"}
        assert set(run.predictions["predicted"].astype(str)) <= {"angry", "sad"}
        # no test-corpus speaker among the speakers the model trained on
        assert all(str(s).startswith(f"{cell.test}:") for s in run.predictions["speaker"])
    again = run_cross(plan, runs=tmp_path / "runs", threads=1, log=lambda _m: None)
    assert [o.action for o in again] == ["done", "done"]
