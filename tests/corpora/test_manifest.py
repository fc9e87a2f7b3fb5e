"""The manifest schema and the bad-input behaviour shared by all loaders."""
import pandas as pd
import pytest
from click.testing import CliRunner

from serbench import corpora
from serbench.cli import cli
from serbench.errors import AudioError, CorpusError

CASIA_SPEAKERS = ("liuchanhg", "wangzhe")
CASIA_EMOTIONS = ("angry", "sad", "neutral")


@pytest.fixture
def casia_tree(tmp_path, tone):
    root = tmp_path / "casia"
    for speaker in CASIA_SPEAKERS:
        for i, emotion in enumerate(CASIA_EMOTIONS):
            for text in ("201", "202"):
                tone(root / speaker / emotion / f"{text}.wav", seconds=0.1 + 0.05 * i)
    (root / "transcripts_201-250.txt").write_text("201 ...\n", encoding="utf-8")
    return root


def test_schema_and_values(casia_tree):
    scan = corpora.scan("casia", casia_tree)
    m = scan.manifest
    assert list(m.columns) == list(corpora.MANIFEST_COLUMNS)
    assert len(m) == 12 and scan.skipped == []
    row = m.set_index("utterance_id").loc["wangzhe_sad_202"]
    assert (row.speaker, row.gender, row.emotion, row.label, row.text_id) == ("wangzhe", "m", "sad", "sad", "202")
    assert row.duration == pytest.approx(0.15) and row.sample_rate == 16000
    assert pd.isna(row.session)
    assert m["utterance_id"].is_unique


def test_emotion_subset(casia_tree):
    m = corpora.load_manifest("casia", casia_tree, emotions=["angry", "sad"])
    assert sorted(m["emotion"].unique()) == ["angry", "sad"] and len(m) == 8


@pytest.mark.parametrize("emotions, match", [(["rage"], "unknown emotion"), (["boredom"], "no utterances labelled")])
def test_bad_emotion_subset(casia_tree, emotions, match):
    with pytest.raises(CorpusError, match=match):
        corpora.scan("casia", casia_tree, emotions=emotions)


def test_unfitting_files_are_listed_not_dropped(casia_tree, tone):
    (casia_tree / "notes.docx").write_bytes(b"x")
    tone(casia_tree / "wangzhe" / "bored" / "201.wav")
    tone(casia_tree / "stray.wav")
    scan = corpora.scan("casia", casia_tree)
    reasons = {s.path: s.reason for s in scan.skipped}
    assert set(reasons) == {"notes.docx", "wangzhe/bored/201.wav", "stray.wav"}
    assert "unknown emotion folder" in reasons["wangzhe/bored/201.wav"]
    assert len(scan.manifest) == 12
    with pytest.raises(CorpusError, match="3 file"):
        corpora.scan("casia", casia_tree, strict=True)


def test_empty_folder_names_expected_layout(tmp_path):
    with pytest.raises(CorpusError, match=r"expected layout: <speaker>/<emotion>/<text id>\.wav"):
        corpora.scan("casia", tmp_path)


def test_missing_folder(tmp_path):
    with pytest.raises(CorpusError, match="not a folder"):
        corpora.scan("emodb", tmp_path / "absent")


def test_unknown_corpus():
    with pytest.raises(CorpusError, match="known corpora: .*casia"):
        corpora.scan("nosuch", ".")


def test_unknown_loader_option(casia_tree):
    with pytest.raises(CorpusError, match="takes no option"):
        corpora.scan("casia", casia_tree, four_class=True)


@pytest.mark.parametrize("content", [b"", b"garbage" * 20])
def test_unreadable_audio_is_an_error_naming_the_file(casia_tree, content):
    bad = casia_tree / "wangzhe" / "angry" / "203.wav"
    bad.write_bytes(content)
    with pytest.raises(AudioError) as exc:
        corpora.scan("casia", casia_tree)
    assert "203.wav" in str(exc.value)


def test_emodb_flat_and_wav_layouts(tmp_path, tone):
    for name in ("03a01Fa", "08b02Wb", "16a05Lc"):
        tone(tmp_path / "wav" / f"{name}.wav", sr=22050)
    tone(tmp_path / "wav" / "03a01Xa.wav")   # unknown emotion code
    (tmp_path / "erkennung.txt").write_text("x", encoding="latin-1")
    scan = corpora.scan("emodb", tmp_path)
    m = scan.manifest.set_index("utterance_id")
    assert list(m.index) == ["03a01Fa", "08b02Wb", "16a05Lc"]
    assert list(m.emotion) == ["happy", "angry", "boredom"]
    assert list(m.gender) == ["m", "f", "f"] and set(m.sample_rate) == {22050}
    assert [s.path for s in scan.skipped] == ["wav/03a01Xa.wav"]


def test_cli_manifest_summary_and_out(casia_tree, tmp_path):
    (casia_tree / "extra.txt").write_text("?")
    out = tmp_path / "m.parquet"
    result = CliRunner().invoke(cli, ["manifest", "--corpus", "casia", "--root", str(casia_tree), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "utterances: 12" in result.output and "speakers: 2" in result.output
    assert "extra.txt: not an audio file" in result.output
    assert len(pd.read_parquet(out)) == 12


def test_cli_error_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["manifest", "--corpus", "casia", "--root", str(tmp_path)])
    assert result.exit_code == 2
    assert "error:" in result.output and "Traceback" not in result.output


def test_cli_corpora_lists_layouts():
    result = CliRunner().invoke(cli, ["corpora"])
    assert result.exit_code == 0
    for name in ("casia", "emodb", "demo"):
        assert name in result.output
    assert "wav/03a01Fa.wav" in result.output


def test_several_unreadable_files_are_all_named(casia_tree):
    (casia_tree / "wangzhe" / "angry" / "203.wav").write_bytes(b"")
    (casia_tree / "liuchanhg" / "sad" / "204.wav").write_bytes(b"junk" * 10)
    with pytest.raises(CorpusError, match="2 unreadable audio files") as exc:
        corpora.scan("casia", casia_tree)
    assert "203.wav" in str(exc.value) and "204.wav" in str(exc.value)
    assert "empty" in str(exc.value) and "unreadable audio" in str(exc.value)


def test_compressed_formats_are_named_with_how_to_convert(casia_tree):
    for ext, kind in ((".mp3", "MP3"), (".ogg", "Ogg"), (".M4A", "M4A/AAC")):
        (casia_tree / "wangzhe" / "angry" / f"205{ext}").write_bytes(b"\xff\xfb\x90\x00")
    reasons = {s.path: s.reason for s in corpora.scan("casia", casia_tree).skipped}
    assert set(reasons) == {f"wangzhe/angry/205{ext}" for ext in (".mp3", ".ogg", ".M4A")}
    assert reasons["wangzhe/angry/205.mp3"].startswith("MP3 audio is not supported")
    assert "`ffmpeg -i 205.ogg 205.wav`" in reasons["wangzhe/angry/205.ogg"]
    assert "M4A/AAC" in reasons["wangzhe/angry/205.M4A"]


def test_dangling_links_and_links_to_folders_are_listed(casia_tree, tmp_path, tone):
    elsewhere = tmp_path / "elsewhere" / "sad"
    tone(elsewhere / "201.wav")
    (casia_tree / "wangzhe" / "angry" / "206.wav").symlink_to(tmp_path / "missing.wav")
    (casia_tree / "zhaoquanyin").mkdir()
    (casia_tree / "zhaoquanyin" / "sad").symlink_to(elsewhere)
    (casia_tree / "wangzhe" / "angry" / "207.wav").symlink_to(elsewhere / "201.wav")  # a file link is read
    scan = corpora.scan("casia", casia_tree)
    reasons = {s.path: s.reason for s in scan.skipped}
    assert set(reasons) == {"wangzhe/angry/206.wav", "zhaoquanyin/sad"}
    assert reasons["wangzhe/angry/206.wav"].startswith("dangling link")
    assert reasons["zhaoquanyin/sad"].startswith("link to a folder")
    assert "wangzhe_angry_207" in set(scan.manifest["utterance_id"])
    result = CliRunner().invoke(cli, ["manifest", "--corpus", "casia", "--root", str(casia_tree)])
    assert "zhaoquanyin/sad: link to a folder" in result.output and "206.wav: dangling link" in result.output


@pytest.mark.parametrize("name", ["../x", "a/b", "a\\b", ".hidden", "", "nope", None])
def test_corpus_names_are_validated(name):
    with pytest.raises(CorpusError, match=r"known corpora: casia, .*demo") as exc:
        corpora.check_corpus_name(name)
    assert "\n" not in str(exc.value)
    with pytest.raises(CorpusError):
        corpora.get_loader(name)


def test_corpus_names_are_case_insensitive():
    assert corpora.check_corpus_name("CASIA") == "casia"
    assert corpora.check_corpus_name("iemocap4") == "iemocap4"


def test_cli_refuses_a_corpus_path(tmp_path):
    result = CliRunner().invoke(cli, ["manifest", "--corpus", "../casia", "--root", str(tmp_path)])
    assert result.exit_code == 2 and "not a path" in result.output and "Traceback" not in result.output
