"""train.py and evaluate.py on a tiny untrained world model: outputs, resuming, refusals, GIFs."""

import csv
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import evaluate
from common.config import with_values
from common.errors import UserFacingError
from common.layout import controller_dir, vision_dir
from conftest import SMOKE_CONFIG, save_untrained_world_model
from controller import load_controller, num_parameters, save_controller
from rnn.rnn import MDNRNN
from stages.evaluation import load_for_config
from stages.evolution import train_controller, world_fingerprint
from stages.report import dream_cell

# One worker process: each one imports TensorFlow (~5 s of CPU); parallelism is tested in test_parallel.py.
TINY = ["--z_size", 4, "--rnn_size", 8, "--max_frames", 15, "--min_frames", 5, "--num_workers", 1,
        "--controller_num_worker", 3, "--controller_num_episode", 2, "--controller_num_test_episode", 2,
        "--controller_eval_steps", 1, "--agent_batch_size", 3, "--controller_max_generations", 1]


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny(make_config):
    """make_config with TINY settings, and an untrained world model of those sizes in its vae/ folder."""
    def make(*overrides):
        return make_config(*TINY, *overrides)

    save_untrained_world_model(make())
    return make


def without_seconds(row):
    return {key: value for key, value in row.items() if key != "seconds"}


def log_rows(config):
    with open(controller_dir(config) / "log.csv") as file:
        return list(csv.DictReader(file))


@pytest.mark.parametrize("dream", [0, 1])
def test_training_writes_its_outputs_and_a_rerun_resumes(tiny, dream):
    config = tiny("--dream_env", dream)
    best = train_controller(config)
    folder = controller_dir(config)
    assert folder.name == ("controller_dream" if dream else "controller")
    assert [row["generation"] for row in log_rows(config)] == ["1"]
    parameters, document = load_controller(folder / "best.json", config)
    assert parameters.shape == (num_parameters(config),) and document["score"] == pytest.approx(best["score"])
    assert ("real_score" in document) == bool(dream)  # a dream-trained controller is scored for real too
    assert document["world_model"] == world_fingerprint(config)  # C -> the V and M it was trained with
    notes = []
    assert load_for_config(folder / "best.json", config, report=notes.append).shape == parameters.shape
    assert notes == []
    document["world_model"] = {**document["world_model"], "rnn.keras": "0" * 64}
    (folder / "other.json").write_text(json.dumps(document))
    load_for_config(folder / "other.json", config, report=notes.append)  # scored, with a note
    assert len(notes) == 1 and "trained with other rnn.keras files" in notes[0]
    # every real step is counted: generation 0's held-out test, or a dream run's real tests
    assert document["real_steps"] > 0 if dream else document["initial_steps"] > 0
    assert document["score"] >= document["initial_score"]  # the initial mean (generation 0) is a candidate
    if document["generation"] == 0:
        assert not parameters.any()  # CMA-ES starts from zeros, as the original does
    first_row = log_rows(config)[0]
    train_controller(tiny("--dream_env", dream, "--controller_max_generations", 3))
    rows = log_rows(config)
    assert [row["generation"] for row in rows] == ["1", "2", "3"] and rows[0] == first_row
    assert all(row["test_score"] for row in rows) and float(rows[0]["steps"]) > 0
    assert json.loads((folder / "log.json").read_text())[2]["generation"] == 3
    assert (folder / "training_curve.png").stat().st_size > 0


def test_real_and_dream_runs_keep_separate_folders_and_changes_are_refused(tiny):
    real = tiny()
    train_controller(real)
    real_log = (controller_dir(real) / "log.csv").read_text()
    train_controller(tiny("--dream_env", 1))
    second = tiny("--controller_seed", 1)  # another CMA-ES run of the same world model
    train_controller(second)
    assert (controller_dir(real) / "log.csv").read_text() == real_log
    assert controller_dir(second).name == "controller_seed1"
    # a run in the other simulator from the same world model: beside gymnasium's, never over it
    assert controller_dir(with_values(second, env_backend="envpool")).name == "controller_envpool_seed1"
    # a recipe variant: its own folder, so a run with other controller settings is not refused but kept apart
    variant = tiny("--controller_sigma_init", 0.5, "--controller_tag", "wide")
    train_controller(variant)
    assert controller_dir(variant).name == "controller_wide"
    assert controller_dir(with_values(variant, env_backend="envpool", controller_seed=2)).name == (
        "controller_envpool_wide_seed2")
    assert (controller_dir(real) / "log.csv").read_text() == real_log
    first_state, second_state = (pickle.loads((controller_dir(config) / "checkpoint.pkl").read_bytes())
                                 for config in (real, second))
    assert first_state["log"][0]["mean"] != second_state["log"][0]["mean"]  # other candidates, other tracks
    assert first_state["initial"]["score"] == second_state["initial"]["score"]  # the same held-out episodes
    with pytest.raises(UserFacingError, match="controller_sigma_init"):
        train_controller(tiny("--controller_sigma_init", 0.5))
    rnn = MDNRNN(4, 8, 3, predict_reward=True, predict_done=True, seed=1)
    rnn.build()
    rnn.save(vision_dir(real) / "rnn.keras")
    with pytest.raises(UserFacingError, match="another vision model, MDN-RNN or controller_init"):
        train_controller(tiny("--controller_max_generations", 2))


def test_the_dream_warm_start_begins_where_the_dream_ended(tiny):
    with pytest.raises(UserFacingError, match="controller_dream/best.json: no such file .* train in the dream first"):
        train_controller(tiny("--controller_init", "dream"))
    dream = tiny("--dream_env", 1, "--controller_max_generations", 2)
    train_controller(dream)
    dream_best, _ = load_controller(controller_dir(dream) / "best.json", dream)
    assert dream_cell(tiny()).endswith("(2 held-out episodes; "
                                       f"{json.loads((controller_dir(dream) / 'best.json').read_text())['score']:.1f} "
                                       "in the dream)")  # the report's row of the dream-trained controller
    warm = tiny("--controller_init", "dream")
    folder = controller_dir(warm)
    with pytest.raises(UserFacingError, match="the dream run is not finished"):  # its 3 generations are not run
        train_controller(tiny("--controller_init", "dream", "--controller_max_generations", 3))
    assert not folder.exists()  # refused before anything is written: the corrected command is not blocked
    train_controller(warm)
    assert folder.name == "controller_warm" and not (folder.parent / "controller").exists()
    start = pickle.loads((folder / "checkpoint.pkl").read_bytes())["initial"]["parameters"]
    np.testing.assert_array_equal(start, dream_best)  # generation 0 is the dream's best, scored for real
    if dream_best.any():
        assert load_controller(folder / "best.json", warm)[0].any()
    with pytest.raises(SystemExit):  # common/config.py refuses it, naming the key (test_config checks the message)
        tiny("--dream_env", 1, "--controller_init", "dream")
    save_controller(controller_dir(dream) / "best.json", dream_best + 1, dream)  # the dream's best changes
    with pytest.raises(UserFacingError, match="controller_init file"):
        train_controller(tiny("--controller_init", "dream", "--controller_max_generations", 2))
    shutil.rmtree(folder)  # a start from any controller file, into the same folder
    path = folder.parent / "elsewhere.json"
    save_controller(path, np.full(num_parameters(warm), 0.5), warm)
    for wrong in (f"{path}.gone", path.parent):  # a missing file, a folder
        with pytest.raises(UserFacingError, match=f"{wrong}: no such file"):
            train_controller(tiny("--controller_init", wrong))
    assert not folder.exists()
    plain = tiny("--controller_init", path)
    train_controller(plain)
    start = pickle.loads((controller_dir(plain) / "checkpoint.pkl").read_bytes())["initial"]["parameters"]
    np.testing.assert_array_equal(start, np.full(num_parameters(warm), 0.5, np.float32))


def test_dream_training_needs_a_reward_head(tiny):
    config = tiny("--dream_env", 1)
    rnn = MDNRNN(4, 8, 3, seed=0)
    rnn.build()
    rnn.save(vision_dir(config) / "rnn.keras")
    with pytest.raises(UserFacingError, match="rnn.keras: dream_env=1 needs an MDN-RNN that predicts the reward"):
        train_controller(config)


def test_evaluate_scores_a_controller_and_writes_gifs(tiny, tmp_path):
    config = tiny()
    train_controller(config)
    best = controller_dir(config) / "best.json"
    arguments = [str(best), "-c", str(SMOKE_CONFIG)]
    base = [*map(str, TINY), "--results_dir", config.results_dir]
    summary = evaluate.main([*arguments, *base, "--episodes", "3", "--gif", str(tmp_path / "agent.gif")])
    with open(best.with_name("best_evaluation.csv")) as file:
        scores = [float(row["score"]) for row in csv.DictReader(file)]
    assert len(scores) == 3 and summary["mean"] == pytest.approx(np.mean(scores))
    assert best.with_name("best_scores.png").exists()
    gif = Image.open(tmp_path / "agent.gif")
    assert gif.n_frames == 15 and gif.size == (2 * (3 * 64 + 2 * 2), 2 * 64)  # real | reconstruction | prediction
    # docs/make_readme_gif.py: every 2nd frame, each pixel 3x3 without smoothing, one small palette
    subprocess.run([sys.executable, str(ROOT / "docs" / "make_readme_gif.py"), str(tmp_path / "agent.gif"),
                    str(tmp_path / "readme.gif"), "--every", "2", "--scale", "3", "--colors", "16"], check=True,
                   capture_output=True)
    readme = Image.open(tmp_path / "readme.gif")
    assert readme.n_frames == 8 and readme.size == (3 * gif.size[0], 3 * gif.size[1])
    pixels = np.asarray(readme.convert("RGB"))
    assert (pixels[0::3] == pixels[1::3]).all() and (pixels[:, 0::3] == pixels[:, 2::3]).all()  # 3x3 blocks
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) <= 16
    evaluate.main([*arguments, *base, "--episodes", "0", "--dream", "--gif", str(tmp_path / "dream.gif")])
    assert Image.open(tmp_path / "dream.gif").size == (2 * 64, 2 * 64)
    with pytest.raises(UserFacingError, match="best.json: made with z_size=4"):
        evaluate.main([*arguments, *base, "--z_size", "8"])


def start_training(config, rows, **popen):
    """train.py for 30 generations of the TINY config in a process of its own, once log.csv has `rows` rows."""
    command = [sys.executable, str(SMOKE_CONFIG.parents[1] / "train.py"), "-c", str(SMOKE_CONFIG),
               "--results_dir", config.results_dir, *map(str, TINY), "--controller_max_generations", "30"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **popen)
    log = controller_dir(config) / "log.csv"
    deadline = time.monotonic() + 240
    while (not log.exists() or len(log_rows(config)) < rows) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    return process


def test_a_killed_run_resumes_from_its_last_generation(tiny):
    config = tiny("--controller_max_generations", 30)
    process = start_training(config, rows=2, start_new_session=True)
    os.killpg(process.pid, signal.SIGKILL)  # kill -9 the driver and its workers
    process.wait()
    done = log_rows(config)
    assert 2 <= len(done) < 30, "the kill should land mid-run"
    train_controller(tiny("--controller_max_generations", len(done) + 2))
    rows = log_rows(config)
    assert [int(row["generation"]) for row in rows] == list(range(1, len(done) + 3))
    # generations before the kill are kept; one whose checkpoint the kill prevented is redone identically
    assert [without_seconds(row) for row in rows[:len(done)]] == [without_seconds(row) for row in done]


def test_a_kill_before_the_last_checkpoint_leaves_consistent_outputs(tiny, monkeypatch):
    from stages import evolution

    config = tiny("--controller_max_generations", 2)
    real_write_outputs = evolution._write_outputs

    def killed_at_the_last_generation(folder, config, state):
        if len(state["log"]) == 2:
            raise KeyboardInterrupt  # the kill, between generation 2's checkpoint and outputs (in either order)
        real_write_outputs(folder, config, state)

    monkeypatch.setattr(evolution, "_write_outputs", killed_at_the_last_generation)
    with pytest.raises(KeyboardInterrupt):
        train_controller(config)
    monkeypatch.undo()
    written = log_rows(config)
    train_controller(config)  # finishes, or repairs: never "nothing to do" over stale outputs
    folder = controller_dir(config)
    state = pickle.loads((folder / "checkpoint.pkl").read_bytes())
    rows = log_rows(config)
    assert [row["generation"] for row in rows] == ["1", "2"] and len(state["log"]) == 2
    assert [without_seconds(row) for row in rows[:1]] == [without_seconds(row) for row in written]
    assert json.loads((folder / "log.json").read_text())[-1]["generation"] == 2
    assert json.loads((folder / "best.json").read_text())["generation"] == state["best"]["generation"]


def test_a_terminated_run_stops_its_workers_and_says_it_can_resume(tiny):
    config = tiny("--controller_max_generations", 30)
    process = start_training(config, rows=1)
    children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    workers = [pid for pid in children if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")]
    assert workers, "the run should have worker processes by now"
    process.terminate()  # SIGTERM to the driver alone, as a scheduler or `kill` sends it
    assert process.wait(timeout=60) == 130 and "rerun the same command to resume" in process.stderr.read()
    time.sleep(2)
    alive = [pid for pid in workers if os.path.exists(f"/proc/{pid}")]
    assert not alive, f"worker processes {alive} outlived their run"
