"""bench/sample_efficiency.py: the real steps a controller run spent, and the steps its world model's rollouts took."""

import json
import sys
from pathlib import Path

import numpy as np

from common.episodes import save_episode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import sample_efficiency  # noqa: E402


def controller_run(folder, initial_steps=3000):
    folder.mkdir(parents=True)
    (folder / "best.json").write_text(json.dumps({"initial_score": -50.0, "initial_score_std": 10.0,
                                                  "initial_steps": initial_steps}))
    (folder / "log.csv").write_text("generation,steps,seconds,test_score,test_std\n"
                                    "1,16000,36,,\n2,20000,36,300.0,40.0\n3,16000,36,,\n")
    return folder


def test_real_steps_count_every_generation_and_generation_zeros_test(tmp_path):
    points = sample_efficiency.evaluations(controller_run(tmp_path / "controller"))
    assert [(steps, score) for steps, _, score, _ in points] == [(3000, -50.0), (3000 + 16000 + 20000, 300.0)]
    assert points[1][1] == 72 / 3600  # wall hours up to the evaluation


def test_rollout_steps_are_counted_beside_the_run_or_read_from_its_record(tmp_path):
    record = tmp_path / "exp" / "CarRacing-v3" / "record"
    record.mkdir(parents=True)
    for index, length in enumerate((5, 7)):
        save_episode(record / f"episode_{index:06d}.npz", np.zeros((length, 64, 64, 3), np.uint8),
                     np.zeros((length, 3)), np.zeros(length), np.arange(length) == length - 1, 100)
    run = controller_run(tmp_path / "exp" / "CarRacing-v3" / "vae" / "controller")
    assert sample_efficiency.rollouts_summary(run) == {"episodes": 2, "steps": 12}
    copy = controller_run(tmp_path / "docs" / "runs" / "a_run" / "controller")
    assert sample_efficiency.rollouts_summary(copy) is None
    (copy.parent / sample_efficiency.ROLLOUTS_FILE).write_text(json.dumps({"episodes": 2, "steps": 12}))
    assert sample_efficiency.rollouts_summary(copy) == {"episodes": 2, "steps": 12}
