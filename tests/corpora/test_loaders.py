"""Corpus loaders on tiny synthetic trees that follow each corpus' real naming convention."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from serbench.corpora import EMOTIONS, expected_count, get_loader, list_corpora, scan
from serbench.corpora.base import AUDIO_SUFFIXES
from serbench.errors import CorpusError

ALL_CORPORA = ("casia", "cremad", "demo", "emodb", "emovo", "iemocap", "iemocap4", "ravdess", "savee", "tess")


@dataclass
class Case:
    """A corpus tree: the files that must parse to ``expected`` rows and the files that must be skipped.

    ``expected``: utterance_id -> (path relative to the root, speaker, gender, emotion, label, text_id, session).
    ``bad``: path -> a fragment of the skip reason (written as tiny WAVs unless not audio).
    ``texts``: metadata files of the release, ignored (or read for labels) without being listed.
    ``ignored``: audio files of the release that are not utterances: neither parsed nor listed.
    """

    expected: dict[str, tuple]
    bad: dict[str, str]
    texts: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    options: dict = field(default_factory=dict)


CREMAD_DEMOGRAPHICS = (
    "ActorID,Age,Sex,Race,Ethnicity\n"
    "1001,51,Male,Caucasian,Not Hispanic\n1002,21,Female,Caucasian,Not Hispanic\n"
    "1091,29,Female,Asian,Not Hispanic\n"
)
IEMOCAP_S1 = (
    "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
    "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\n"
    "C-E2:\tNeutral;\t()\nC-E3:\tNeutral;\t()\nA-E3:\tval 3; act 2; dom  2;\t()\n\n"
    "[10.0100 - 11.3925]\tSes01F_impro01_M000\texc\t[3.5000, 3.5000, 3.0000]\n"
    "[14.8872 - 18.0175]\tSes01F_impro01_F001\txxx\t[2.0000, 2.5000, 2.5000]\n"
    "[19.2900 - 20.7875]\tSes01F_impro01_M001\toth\t[3.0000, 3.0000, 3.0000]\n"
)
IEMOCAP_S2 = "[1.0000 - 2.5000]\tSes02M_script01_1_F003\tfru\t[2.0000, 3.5000, 3.5000]\n"
IEMOCAP_RELEASE = "IEMOCAP_full_release/"
IEMOCAP_D1 = IEMOCAP_RELEASE + "Session1/sentences/wav/Ses01F_impro01/"

CASES: dict[str, Case] = {
    "ravdess": Case(
        expected={
            "03-01-05-02-01-02-01": ("Actor_01/03-01-05-02-01-02-01.wav", "01", "m", "angry", "05", "01", None),
            "03-01-06-01-02-01-12": ("Audio_Speech_Actors_01-24/Actor_12/03-01-06-01-02-01-12.wav",
                                     "12", "f", "fear", "06", "02", None),
            "03-01-02-01-01-01-24": ("03-01-02-01-01-01-24.wav", "24", "f", "calm", "02", "01", None),
            "03-01-08-02-02-02-03": ("Actor_03/03-01-08-02-02-02-03.wav", "03", "m", "surprise", "08", "02", None),
        },
        bad={
            "Actor_01/03-02-03-01-01-01-01.wav": "song, not speech",
            "Actor_02/03-01-01-01-01-01-04.wav": "actor 04 in the name but the file is in Actor_02",
            "Actor_02/03-01-09-01-01-01-02.wav": "unknown emotion code '09'",
            "Actor_02/notes.wav": "name is not MM-VV-EE-II-SS-RR-AA",
            "Actor_02/take.mp3": "MP3 audio is not supported (serbench reads WAV and FLAC); convert it, e.g. `ffmpeg -i take.mp3 take.wav`",
        },
        texts={"README.md": "RAVDESS"},
    ),
    "iemocap": Case(
        expected={
            "Ses01F_impro01_F000": (IEMOCAP_D1 + "Ses01F_impro01_F000.wav",
                                    "Ses01F", "f", "neutral", "neu", "Ses01F_impro01", "Session1"),
            "Ses01F_impro01_M000": (IEMOCAP_D1 + "Ses01F_impro01_M000.wav",
                                    "Ses01M", "m", "excited", "exc", "Ses01F_impro01", "Session1"),
            "Ses02M_script01_1_F003": (
                IEMOCAP_RELEASE + "Session2/sentences/wav/Ses02M_script01_1/Ses02M_script01_1_F003.wav",
                "Ses02F", "f", "frustrated", "fru", "Ses02M_script01_1", "Session2"),
        },
        bad={
            IEMOCAP_D1 + "Ses01F_impro01_F001.wav": "no majority label (xxx)",
            IEMOCAP_D1 + "Ses01F_impro01_M001.wav": "'oth'",
            IEMOCAP_D1 + "Ses01F_impro01_F002.wav":
                "no label line in Session1/dialog/EmoEvaluation/Ses01F_impro01.txt",
            IEMOCAP_D1 + "take2.wav": "name is not <dialog>_<F|M><nnn>",
            IEMOCAP_RELEASE + "Session2/sentences/wav/Ses01F_impro01/Ses01F_impro01_F009.wav": "filed under Session2",
            IEMOCAP_RELEASE + "Session1/extra.wav": "audio outside Session<1-5>/sentences/wav",
        },
        texts={
            IEMOCAP_RELEASE + "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt": IEMOCAP_S1,
            IEMOCAP_RELEASE + "Session2/dialog/EmoEvaluation/Ses02M_script01_1.txt": IEMOCAP_S2,
            # Per-annotator files in sub-folders must not be read as majority labels.
            IEMOCAP_RELEASE + "Session1/dialog/EmoEvaluation/Categorical/Ses01F_impro01_e1_cat.txt":
                "[1.0000 - 2.0000]\tSes01F_impro01_F002\tang\t[1.0, 1.0, 1.0]\n",
            IEMOCAP_RELEASE + "Session1/dialog/transcriptions/Ses01F_impro01.txt": "Ses01F_impro01_F000 [6-8]: Hi.",
            IEMOCAP_RELEASE + "Session1/sentences/MOCAP_head/Ses01F_impro01/Ses01F_impro01_F000.txt": "0 0 0",
            IEMOCAP_RELEASE + "README.txt": "IEMOCAP",
        },
        ignored=[IEMOCAP_RELEASE + "Session1/dialog/wav/Ses01F_impro01.wav"],
    ),
    "savee": Case(
        expected={
            "DC_a01": ("AudioData/DC/a01.wav", "DC", "m", "angry", "a", "a01", None),
            "KL_su15": ("AudioData/KL/su15.wav", "KL", "m", "surprise", "su", "su15", None),
            "JE_sa03": ("AudioData/JE/sa03.wav", "JE", "m", "sad", "sa", "sa03", None),
            "JK_n30": ("AudioData/JK/n30.wav", "JK", "m", "neutral", "n", "n30", None),
        },
        bad={
            "AudioData/XY/a01.wav": "unknown speaker 'XY'",
            "AudioData/DC/z01.wav": "expected AudioData/<speaker>/<code><nn>.wav",
            "AudioData/DC/a01.txt.bak": "not an audio file",
        },
        texts={"AudioData/Info.txt": "SAVEE"},
    ),
    "tess": Case(
        expected={
            "OAF_back_angry": ("OAF_angry/OAF_back_angry.wav", "OAF", "f", "angry", "angry", "back", None),
            "YAF_bite_ps": ("YAF_pleasant_surprised/YAF_bite_ps.wav", "YAF", "f", "surprise", "ps", "bite", None),
            "OAF_dog_ps": ("OAF_Pleasant_surprise/OAF_dog_ps.wav", "OAF", "f", "surprise", "ps", "dog", None),
            "OAF_chair_fear": ("OAF_Fear/OAF_chair_fear.wav", "OAF", "f", "fear", "fear", "chair", None),
            "YAF_youth_neutral": ("YAF_neutral/YAF_youth_neutral.wav", "YAF", "f", "neutral", "neutral", "youth", None),
        },
        bad={
            "OAF_Sad/OAF_back_happy.wav": "in folder 'OAF_Sad'",
            "YAF_sad/YAF_sad.wav": "name is not <OAF|YAF>_<word>_<emotion>",
            "XAF_angry/XAF_back_angry.wav": "name is not",
        },
        texts={"README.md": "TESS"},
    ),
    "cremad": Case(
        expected={
            "1001_DFA_ANG_XX": ("AudioWAV/1001_DFA_ANG_XX.wav", "1001", "m", "angry", "ANG", "DFA", None),
            "1002_IEO_HAP_HI": ("AudioWAV/1002_IEO_HAP_HI.wav", "1002", "f", "happy", "HAP", "IEO", None),
            "1091_WSI_SAD_LO": ("AudioWAV/1091_WSI_SAD_LO.wav", "1091", "f", "sad", "SAD", "WSI", None),
            "1040_ITH_SAD_X": ("AudioWAV/1040_ITH_SAD_X.wav", "1040", None, "sad", "SAD", "ITH", None),
        },
        bad={
            "AudioWAV/1001_DFA_CAL_XX.wav": "unknown emotion code 'CAL'",
            "AudioWAV/1001_XYZ_ANG_XX.wav": "unknown sentence code 'XYZ'",
            "AudioWAV/1200_DFA_ANG_XX.wav": "actor 1200 outside 1001-1091",
            "AudioWAV/sub/1001_DFA_NEU_XX.wav": "belong in AudioWAV/",
        },
        texts={
            "VideoDemographics.csv": CREMAD_DEMOGRAPHICS,
            "AudioMP3/1001_DFA_ANG_XX.mp3": "not decoded",
            "README.md": "CREMA-D",
            "finishedResponses.csv": "a,b\n",
        },
    ),
    "emovo": Case(
        expected={
            "dis-f1-b1": ("EMOVO/f1/dis-f1-b1.wav", "f1", "f", "disgust", "dis", "b1", None),
            "gio-m3-n5": ("EMOVO/m3/gio-m3-n5.wav", "m3", "m", "happy", "gio", "n5", None),
            "pau-m2-d2": ("EMOVO/m2/pau-m2-d2.wav", "m2", "m", "fear", "pau", "d2", None),
            "rab-f2-l4": ("EMOVO/f2/rab-f2-l4.wav", "f2", "f", "angry", "rab", "l4", None),
        },
        bad={
            "EMOVO/f2/tri-f3-l1.wav": "speaker f3 in the name but the file is in folder 'f2'",
            "EMOVO/f1/xyz-f1-b1.wav": "unknown emotion code 'xyz'",
            "EMOVO/f1/neu-f1-z9.wav": "unknown sentence code 'z9'",
            "EMOVO/x9/neu-x9-b1.wav": "expected [EMOVO/]<speaker>",
        },
        texts={"EMOVO/documents/LA STRUTTURA DI EMOVO.pdf": "pdf", "EMOVO/README.txt": "EMOVO"},
    ),
    # The lead's loaders, covered by the same checks.
    "casia": Case(
        expected={
            "wangzhe_angry_201": ("wangzhe/angry/201.wav", "wangzhe", "m", "angry", "angry", "201", None),
            "liuchang_sad_202": ("liuchang/sad/202.wav", "liuchang", "f", "sad", "sad", "202", None),
        },
        bad={"wangzhe/bored/203.wav": "unknown emotion folder 'bored'", "wangzhe/204.wav": "expected <speaker>"},
        texts={"transcripts_all.txt": "201 text"},
    ),
    "emodb": Case(
        expected={
            "03a01Fa": ("wav/03a01Fa.wav", "03", "m", "happy", "F", "a01", None),
            "16b10Lb": ("wav/16b10Lb.wav", "16", "f", "boredom", "L", "b10", None),
        },
        bad={"wav/03a01Xa.wav": "unknown emotion code 'X'", "wav/readme.wav": "name is not"},
        texts={"erkennung.txt": "x", "lablaut/03a01Fa.lab": "x"},
    ),
    "demo": Case(
        expected={
            "spk1_happy_t01": ("spk1/happy/t01.wav", "spk1", "f", "happy", "happy", "t01", None),
            "spk2_sad_t02": ("spk2/sad/t02.wav", "spk2", None, "sad", "sad", "t02", None),
        },
        bad={"spk1/joy/t03.wav": "unknown emotion folder 'joy'"},
        texts={"demo-corpus.json": json.dumps({"speakers": [{"name": "spk1", "gender": "f"}]})},
    ),
}


def _build(case: Case, root: Path, make_corpus) -> Path:
    rows = [row[0] for row in case.expected.values()]
    bad_audio = [p for p in case.bad if Path(p).suffix.lower() in AUDIO_SUFFIXES]
    bad_other = {p: "x" for p in case.bad if p not in bad_audio}
    return make_corpus(root, rows + bad_audio + case.ignored, {**case.texts, **bad_other})


def _rows(manifest: pd.DataFrame) -> dict[str, tuple]:
    cols = ["speaker", "gender", "emotion", "label", "text_id", "session"]
    return {
        r["utterance_id"]: tuple(None if pd.isna(r[c]) else r[c] for c in cols)
        for r in manifest.to_dict("records")
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_scan_parses_the_layout(name: str, tmp_path: Path, make_corpus) -> None:
    case = CASES[name]
    root = _build(case, tmp_path / name, make_corpus)
    result = scan(name, root, **case.options)
    m = result.manifest
    assert list(m["utterance_id"]) == sorted(case.expected)
    assert _rows(m) == {uid: row[1:] for uid, row in case.expected.items()}
    paths = dict(zip(m["utterance_id"], m["path"]))
    for uid, row in case.expected.items():
        assert paths[uid] == str((root / row[0]).resolve())
    assert set(m["emotion"]) <= set(EMOTIONS)
    assert (m["sample_rate"] == 16000).all()
    assert m["duration"].round(3).eq(0.1).all()
    reasons = {s.path: s.reason for s in result.skipped}
    assert set(reasons) == set(case.bad)  # metadata files are not listed, misfits all are
    for path, fragment in case.bad.items():
        assert fragment in reasons[path], (path, reasons[path])


@pytest.mark.parametrize("name", sorted(CASES))
def test_strict_refuses_misfits(name: str, tmp_path: Path, make_corpus) -> None:
    case = CASES[name]
    root = _build(case, tmp_path / name, make_corpus)
    with pytest.raises(CorpusError, match="do not fit the") as err:
        scan(name, root, strict=True, **case.options)
    assert sorted(case.bad)[0] in str(err.value)


@pytest.mark.parametrize("name", ALL_CORPORA)
def test_empty_folder_names_the_layout(name: str, tmp_path: Path) -> None:
    with pytest.raises(CorpusError) as err:
        scan(name, tmp_path)
    assert "no files found" in str(err.value)
    assert get_loader(name).INFO.layout in str(err.value)


@pytest.mark.parametrize("name", ["ravdess", "iemocap", "savee", "tess", "cremad", "emovo"])
def test_only_misfits_is_an_error(name: str, tmp_path: Path, make_corpus) -> None:
    make_corpus(tmp_path, ["misc/recording.wav"])
    with pytest.raises(CorpusError, match="none matched"):
        scan(name, tmp_path)


def test_list_corpora_lists_all() -> None:
    infos = list_corpora()
    assert [i.name for i in infos] == sorted(ALL_CORPORA)
    for info in infos:
        assert info.emotions and set(info.emotions) <= set(EMOTIONS), info.name
        assert info.layout and info.obtain and info.title


@pytest.mark.parametrize("name, expected", [
    ("ravdess", 1440), ("iemocap", 7529), ("savee", 480), ("tess", 2800), ("cremad", 7442), ("emovo", 588),
])
def test_expected_counts(name: str, expected: int) -> None:
    assert expected_count(name) == expected


@pytest.mark.parametrize("name", ["ravdess", "iemocap", "savee", "tess", "cremad", "emovo"])
def test_info_emotions_match_the_code_tables(name: str) -> None:
    loader = get_loader(name)
    assert set(loader.INFO.emotions) == set(loader.CODES.values())
    assert set(loader.CODES.values()) <= set(EMOTIONS)


# --- RAVDESS -------------------------------------------------------------------------------

def test_ravdess_song_files_are_skipped(tmp_path: Path, make_corpus) -> None:
    make_corpus(tmp_path, [
        "Audio_Song_Actors_01-24/Actor_05/03-02-03-01-01-01-05.wav",
        "Audio_Song_Actors_01-24/Actor_05/03-02-04-02-02-02-05.wav",
        "Actor_05/03-01-04-02-02-02-05.wav",
    ])
    result = scan("ravdess", tmp_path)
    assert list(result.manifest["utterance_id"]) == ["03-01-04-02-02-02-05"]
    assert [(s.path, s.reason) for s in result.skipped] == [
        ("Audio_Song_Actors_01-24/Actor_05/03-02-03-01-01-01-05.wav", "song, not speech"),
        ("Audio_Song_Actors_01-24/Actor_05/03-02-04-02-02-02-05.wav", "song, not speech"),
    ]


def test_ravdess_kaggle_duplicates_are_skipped(tmp_path: Path, make_corpus) -> None:
    name = "03-01-07-02-01-01-08.wav"
    make_corpus(tmp_path, [f"Actor_08/{name}", f"audio_speech_actors_01-24/Actor_08/{name}"])
    result = scan("ravdess", tmp_path)
    assert result.manifest["path"].tolist() == [str((tmp_path / "Actor_08" / name).resolve())]
    assert result.manifest["emotion"].tolist() == ["disgust"]
    assert [(s.path, s.reason) for s in result.skipped] == [
        (f"audio_speech_actors_01-24/Actor_08/{name}", f"duplicate of Actor_08/{name}"),
    ]


def test_ravdess_rejects_loader_options_it_does_not_take(tmp_path: Path, make_corpus) -> None:
    make_corpus(tmp_path, ["Actor_01/03-01-01-01-01-01-01.wav"])
    with pytest.raises(CorpusError, match="takes no option"):
        scan("ravdess", tmp_path, four_class=True)


# --- IEMOCAP -------------------------------------------------------------------------------

def _iemocap(tmp_path: Path, make_corpus) -> Path:
    return _build(CASES["iemocap"], tmp_path / "corpus", make_corpus)


def test_iemocap_four_class_merges_exc_into_happy(tmp_path: Path, make_corpus) -> None:
    root = _iemocap(tmp_path, make_corpus)
    result = scan("iemocap", root, four_class=True)
    rows = _rows(result.manifest)
    assert rows == {
        "Ses01F_impro01_F000": ("Ses01F", "f", "neutral", "neu", "Ses01F_impro01", "Session1"),
        "Ses01F_impro01_M000": ("Ses01M", "m", "happy", "exc", "Ses01F_impro01", "Session1"),
    }
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    # fru is left out because the user asked for four classes: not listed; xxx/oth still are.
    assert "Ses02M_script01_1_F003.wav" not in reasons
    assert reasons["Ses01F_impro01_F001.wav"] == "no majority label (xxx)"
    assert set(reasons) == {Path(p).name for p in CASES["iemocap"].bad}


def test_iemocap_root_may_be_the_release_folder(tmp_path: Path, make_corpus) -> None:
    root = _iemocap(tmp_path, make_corpus)
    outer = scan("iemocap", root)
    inner = scan("iemocap", root / "IEMOCAP_full_release")
    assert inner.manifest.drop(columns="path").equals(outer.manifest.drop(columns="path"))
    assert inner.manifest["path"].tolist() == outer.manifest["path"].tolist()
    assert {s.path for s in inner.skipped} == {p[len(IEMOCAP_RELEASE):] for p in CASES["iemocap"].bad}


def test_iemocap_emotion_subset(tmp_path: Path, make_corpus) -> None:
    root = _iemocap(tmp_path, make_corpus)
    m = scan("iemocap", root, emotions=["neutral", "frustrated"]).manifest
    assert m["utterance_id"].tolist() == ["Ses01F_impro01_F000", "Ses02M_script01_1_F003"]


# --- SAVEE, TESS, CREMA-D, EMOVO -----------------------------------------------------------

def test_savee_kaggle_flat_naming(tmp_path: Path, make_corpus) -> None:
    make_corpus(tmp_path, ["ALL/DC_a01.wav", "ALL/JK_n30.wav", "KL_sa07.wav", "ALL/XX_a01.wav"])
    result = scan("savee", tmp_path)
    assert _rows(result.manifest) == {
        "DC_a01": ("DC", "m", "angry", "a", "a01", None),
        "JK_n30": ("JK", "m", "neutral", "n", "n30", None),
        "KL_sa07": ("KL", "m", "sad", "sa", "sa07", None),
    }
    assert [(s.path, s.reason) for s in result.skipped] == [
        ("ALL/XX_a01.wav", "unknown speaker 'XX'; SAVEE has DC, JE, JK, KL"),
    ]


def test_tess_kaggle_nesting_and_duplicates(tmp_path: Path, make_corpus) -> None:
    outer = "TESS Toronto emotional speech set data"
    make_corpus(tmp_path, [
        f"{outer}/OAF_disgust/OAF_bean_disgust.wav",
        f"{outer}/{outer}/OAF_disgust/OAF_bean_disgust.wav",
        f"{outer}/YAF_happy/YAF_mood_happy.wav",
    ])
    result = scan("tess", tmp_path)
    assert _rows(result.manifest) == {
        "OAF_bean_disgust": ("OAF", "f", "disgust", "disgust", "bean", None),
        "YAF_mood_happy": ("YAF", "f", "happy", "happy", "mood", None),
    }
    assert [(s.path, s.reason) for s in result.skipped] == [
        (f"{outer}/{outer}/OAF_disgust/OAF_bean_disgust.wav", f"duplicate of {outer}/OAF_disgust/OAF_bean_disgust.wav"),
    ]


def test_cremad_without_demographics_has_no_gender(tmp_path: Path, make_corpus) -> None:
    root = make_corpus(tmp_path / "AudioWAV", ["1001_DFA_ANG_XX.wav", "1002_IEO_NEU_MD.wav"])
    m = scan("cremad", root).manifest
    assert m["utterance_id"].tolist() == ["1001_DFA_ANG_XX", "1002_IEO_NEU_MD"]
    assert m["gender"].isna().all()
    assert m["emotion"].tolist() == ["angry", "neutral"]


def test_cremad_demographics_next_to_audiowav(tmp_path: Path, make_corpus) -> None:
    make_corpus(tmp_path, ["AudioWAV/1001_DFA_ANG_XX.wav"], {"VideoDemographics.csv": CREMAD_DEMOGRAPHICS})
    m = scan("cremad", tmp_path / "AudioWAV").manifest
    assert m["gender"].tolist() == ["m"]


def test_cremad_bad_demographics_is_an_error(tmp_path: Path, make_corpus) -> None:
    make_corpus(tmp_path, ["AudioWAV/1001_DFA_ANG_XX.wav"], {"VideoDemographics.csv": "ActorID,Gender\n1001,M\n"})
    with pytest.raises(CorpusError, match=r"VideoDemographics.csv: no column\(s\) \['Sex'\]"):
        scan("cremad", tmp_path)


def test_cremad_git_lfs_pointer_and_known_defect_are_named(tmp_path: Path, make_corpus) -> None:
    pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:c6f9\nsize 72862\n"
    make_corpus(tmp_path, ["AudioWAV/1001_DFA_ANG_XX.wav"], {"AudioWAV/1001_DFA_DIS_XX.wav": pointer})
    header_only = tmp_path / "AudioWAV" / "1076_MTI_NEU_XX.wav"
    header_only.write_bytes((tmp_path / "AudioWAV" / "1001_DFA_ANG_XX.wav").read_bytes()[:44])
    result = scan("cremad", tmp_path)
    assert result.manifest["utterance_id"].tolist() == ["1001_DFA_ANG_XX"]
    reasons = {s.path: s.reason for s in result.skipped}
    assert "git lfs pull" in reasons["AudioWAV/1001_DFA_DIS_XX.wav"]
    assert "known defective" in reasons["AudioWAV/1076_MTI_NEU_XX.wav"]


def test_emovo_without_container_folder(tmp_path: Path, make_corpus) -> None:
    make_corpus(tmp_path, ["f3/sor-f3-n1.wav", "m1/tri-m1-b3.wav"], {"documents/poster.pdf": "pdf"})
    result = scan("emovo", tmp_path)
    assert _rows(result.manifest) == {
        "sor-f3-n1": ("f3", "f", "surprise", "sor", "n1", None),
        "tri-m1-b3": ("m1", "m", "sad", "tri", "b3", None),
    }
    assert result.skipped == []
