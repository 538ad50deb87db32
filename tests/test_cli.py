import subprocess
import sys

import pytest

from radsynth.cli import VERB_HELP

VERBS = ("data", "train", "synth", "quality", "evaluate", "experiment", "report", "demo", "bench")


def test_help_lists_every_verb():
    proc = subprocess.run([sys.executable, "-m", "radsynth.cli", "--help"], capture_output=True, text=True, check=True)
    assert tuple(VERB_HELP) == VERBS
    for verb in VERBS:
        assert verb in proc.stdout


def test_usage_errors_exit_2(cli):
    with pytest.raises(SystemExit) as info:
        cli("data", "prepare", "x")  # --out missing
    assert info.value.code == 2
