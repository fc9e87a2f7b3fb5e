"""IEMOCAP end to end: a synthesized release layout, the 4-class corpus, leave-one-session-out by default."""
from pathlib import Path

import pytest

from serbench.corpora import expected_count, scan
from serbench.experiments.protocol import default_protocol
from serbench.systems import run_baseline

# Pitch per label so a classifier has something to learn; 'fru' is outside the 4 classes.
PITCH = {"ang": 330.0, "hap": 262.0, "exc": 277.0, "neu": 196.0, "sad": 147.0, "fru": 220.0}


def make_release(root: Path, tone, per_label: int = 2) -> Path:
    """Sessions 1-5, each with a female- and a male-led dialog holding F and M turns."""
    base = root / "IEMOCAP_full_release"
    for s in range(1, 6):
        for lead in "FM":
            dialog = f"Ses0{s}{lead}_impro01"
            lines = []
            k = 0
            for code, f0 in PITCH.items():
                for i in range(per_label):
                    for gender in "FM":
                        utt = f"{dialog}_{gender}{k:03d}"
                        k += 1
                        tone(base / f"Session{s}/sentences/wav/{dialog}/{utt}.wav", seconds=0.4,
                             freq=f0 * (1.0 if gender == "F" else 0.8) + 5 * i + s)
                        lines.append(f"[{k}.0000 - {k}.5000]\t{utt}\t{code}\t[2.5000, 2.5000, 2.5000]\n")
            evaluation = base / f"Session{s}/dialog/EmoEvaluation/{dialog}.txt"
            evaluation.parent.mkdir(parents=True, exist_ok=True)
            evaluation.write_text("".join(lines))
    return root


def test_iemocap4_is_the_four_class_subset(tmp_path, tone):
    root = make_release(tmp_path / "iemocap", tone, per_label=1)
    full = scan("iemocap", root).manifest
    four = scan("iemocap4", root).manifest
    assert set(full["emotion"]) == {"angry", "happy", "excited", "neutral", "sad", "frustrated"}
    assert set(four["emotion"]) == {"angry", "happy", "neutral", "sad"}
    assert set(four.loc[four["emotion"] == "happy", "label"]) == {"hap", "exc"}
    assert len(four) == len(full) - (full["emotion"] == "frustrated").sum()
    assert scan("iemocap4", root).corpus == "iemocap4" and expected_count("iemocap4") == 5531
    assert sorted(four["session"].unique()) == [f"Session{s}" for s in range(1, 6)]


@pytest.mark.parametrize("corpus", ["iemocap", "iemocap4"])
def test_default_protocol_is_leave_one_session_out(corpus):
    assert default_protocol(corpus).name == "loso-session"


def test_baseline_on_iemocap4_holds_out_sessions(tmp_path, tone):
    root = make_release(tmp_path / "iemocap", tone)
    res = run_baseline("iemocap4", root, "MFCC", cache=tmp_path / "cache", runs=tmp_path / "runs")
    preds = res.predictions
    assert res.record["config"]["protocol"] == "loso-session" and res.system == "MFCC-svm-linear"
    assert res.path.parent == tmp_path / "runs" / "iemocap4" / "MFCC-svm-linear"
    assert sorted(preds["fold"].unique()) == [f"Session{s}" for s in range(1, 6)]
    # Both speakers of a session are tested in that session's fold, never trained on there.
    for fold, rows in preds.groupby("fold"):
        assert set(rows["speaker"]) == {f"Ses0{fold[-1]}F", f"Ses0{fold[-1]}M"}
    assert set(preds["true"]) == {"angry", "happy", "neutral", "sad"}
    assert res.metrics["ua"] > 0.5 and res.ua == res.metrics["ua"]  # pitch separates the classes: it learns

    per_speaker = run_baseline("iemocap4", root, "MFCC", protocol="loso", cache=tmp_path / "cache",
                               runs=tmp_path / "runs")
    assert per_speaker.predictions["fold"].nunique() == 10
