"""The systems' options on the command line come from the settings' own declarations."""
import pytest
from click.testing import CliRunner

from serbench.cli import cli
from serbench.systems import registry

COMMANDS = {"baseline": "baseline", "deep": "deep", "train": None}


@pytest.mark.parametrize("command, kind", COMMANDS.items())
def test_every_setting_with_a_flag_is_an_option_of_its_commands(command, kind):
    help_text = CliRunner().invoke(cli, [command, "--help"], terminal_width=200).output
    flags = {f.metadata["flag"] for s in registry.all_systems(kind=kind)
             for f in s.settings_class.fields().values() if f.metadata.get("flag")}
    assert flags, "no setting declares a flag"
    for flag in flags:
        assert flag in help_text, f"{flag} missing from `serbench {command} --help`"


def test_an_option_the_system_lacks_is_an_error_naming_it(tmp_path):
    result = CliRunner().invoke(cli, ["deep", "--corpus", "demo", "--root", str(tmp_path), "--model", "crnn",
                                      "--segments", "3"])
    assert result.exit_code == 2
    assert "--segments: crnn has no such setting" in result.output


def test_an_option_and_a_conflicting_set_are_refused(tmp_path):
    result = CliRunner().invoke(cli, ["deep", "--corpus", "demo", "--root", str(tmp_path), "--segments", "3",
                                      "--set", "segments=4"])
    assert result.exit_code == 2 and "give it once" in result.output


def test_the_python_api_defaults_to_fast_never_paper():
    assert registry.get("crnn").settings().profile == "fast"
    assert registry.get("cnn-sru").settings(None, {"segments": 3}).profile == "fast"
    assert registry.get("cnn").settings_class.build(None, {"segments": 1}).profile == "fast"


@pytest.mark.parametrize("command", [["baseline", "--feature", "IS10"], ["deep", "--segments", "3"], ["manifest"]])
def test_an_emotions_list_naming_nothing_is_refused(command, tmp_path):
    result = CliRunner().invoke(cli, [command[0], "--corpus", "demo", "--root", str(tmp_path), *command[1:],
                                      "--emotions", " , "])
    assert result.exit_code == 2, result.output
    assert "--emotions" in result.output and "names nothing" in result.output
    assert len(result.output.strip().splitlines()) == 1
