"""Atomic writes, folder locks and stale temporaries: what a killed or misdirected run leaves and meets."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.errors import UserFacingError
from common.files import folder_lock, remove_stale_temporaries, write_text_atomic

ROOT = Path(__file__).resolve().parents[1]


def test_only_temporaries_of_processes_that_are_gone_are_removed(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = tmp_path / "vae" / f".vae.{int(finished.stdout)}.tmp.keras"  # a kill during a write leaves this
    running = tmp_path / "vae" / "controller" / f".log.{os.getpid()}.tmp.csv"  # another stage, writing now
    nameless = tmp_path / ".old.tmp.json"  # the name of an older version, without a pid
    for path in (gone, running, nameless):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("half")
    assert remove_stale_temporaries(tmp_path) == 2
    assert running.exists() and not gone.exists() and not nameless.exists()


@pytest.mark.parametrize("place", ["/proc/no_such_folder/results", "/proc/self/results", "/sys/kernel/results"])
def test_a_folder_that_cannot_be_written_is_one_line_naming_it(place):
    with pytest.raises(UserFacingError, match=f"^{place}: cannot write here"):
        with folder_lock(place, "test"):
            pass
    with pytest.raises(UserFacingError, match=f"^{place}/a.json: cannot write here"):
        write_text_atomic(f"{place}/a.json", "{}")


def test_a_script_pointed_at_an_unwritable_results_dir_exits_with_one_line():
    run = subprocess.run([sys.executable, str(ROOT / "WorldModels" / "extract.py"), "-c",
                          str(ROOT / "WorldModels" / "configs" / "smoke.config"), "--results_dir", "/proc/nowhere"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and run.stdout == ""
    assert run.stderr.strip().count("\n") == 0 and "/proc/nowhere/smoke/CarRacing-v3/record: cannot write" in run.stderr
