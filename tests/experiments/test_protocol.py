import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

from serbench.experiments.protocol import (
    LeaveOneSessionOut,
    LeaveOneSpeakerOut,
    ProtocolError,
    default_protocol,
    get_protocol,
    inner_cv,
)


def _manifest(speakers, per_speaker=5, sessions=None):
    rows = []
    for i, s in enumerate(speakers):
        for k in range(per_speaker):
            rows.append({"utterance_id": f"{s}_{k}", "speaker": s,
                         "session": sessions[i] if sessions else pd.NA})
    # Shuffle so that folds cannot rely on speakers being contiguous.
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0).reset_index(drop=True)


def test_loso_folds_partition_rows_and_test_each_speaker_once():
    m = _manifest(["b", "a", "d", "c"], per_speaker=[3][0])
    folds = get_protocol("loso").folds(m)
    assert [f.name for f in folds] == ["a", "b", "c", "d"]
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested.tolist()) == list(range(len(m)))  # every row tested exactly once
    for f in folds:
        assert set(m["speaker"].iloc[f.test]) == {f.name}
        assert f.name not in set(m["speaker"].iloc[f.train])
        assert sorted(np.concatenate([f.train, f.test]).tolist()) == list(range(len(m)))
        assert len(np.intersect1d(f.train, f.test)) == 0


def test_session_protocol_holds_out_both_speakers_of_a_session():
    m = _manifest(["F1", "M1", "F2", "M2", "F3", "M3"], sessions=["S1", "S1", "S2", "S2", "S3", "S3"])
    folds = LeaveOneSessionOut().folds(m)
    assert [f.name for f in folds] == ["S1", "S2", "S3"]
    s1 = folds[0]
    assert set(m["speaker"].iloc[s1.test]) == {"F1", "M1"}
    assert not {"F1", "M1"} & set(m["speaker"].iloc[s1.train])


def test_fewer_than_two_groups_is_an_error_naming_corpus_and_column():
    m = _manifest(["only"])
    with pytest.raises(ProtocolError, match=r"'speaker'.*mycorpus"):
        LeaveOneSpeakerOut().folds(m, corpus="mycorpus")


def test_missing_sessions_are_an_error_not_a_silent_drop():
    m = _manifest(["a", "b"])  # no sessions
    with pytest.raises(ProtocolError, match="no 'session'.*--protocol loso"):
        LeaveOneSessionOut().folds(m, corpus="casia")


def test_registry_and_defaults():
    assert isinstance(get_protocol("loso"), LeaveOneSpeakerOut)
    assert isinstance(get_protocol("LOSO-session"), LeaveOneSessionOut)
    assert default_protocol("iemocap").name == "loso-session"
    assert default_protocol("casia").name == "loso"
    with pytest.raises(ProtocolError, match="choose one of loso, loso-session"):
        get_protocol("kfold")


def test_inner_cv_is_speaker_grouped():
    few = np.repeat(["a", "b", "c"], 4)
    assert isinstance(inner_cv(few), LeaveOneGroupOut)
    many = np.repeat([f"s{i}" for i in range(8)], 3)
    cv = inner_cv(many)
    assert isinstance(cv, GroupKFold) and cv.get_n_splits() == 5
    for train, test in cv.split(np.zeros(len(many)), groups=many):
        assert not set(many[train]) & set(many[test])
    with pytest.raises(ProtocolError, match="at least 2 training speakers"):
        inner_cv(["a", "a"])
