"""series.py and rnn_train.py on tiny rollouts: the series format, resuming, refusals, the RNN's outputs."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.config import parse_config
from common.data import split_episodes
from common.episodes import list_episodes, load_episode
from common.errors import UserFacingError
from common.layout import model_path, record_dir, rnn_path, series_path, vision_dir
from conftest import SMOKE_CONFIG, copied_results, corrupt_frames, kill_after_epoch
from stages import memory
from stages.action_usage import PREFIX_STEPS, PROBE_ACTIONS, dream_probes, play_probes
from stages.agent import load_agent, load_dream
from stages.evolution import world_fingerprint
from stages.memory import encode_series, load_rnn, load_series, train_memory
from stages.rollouts import extract
from stages.vision import load_vision_model, train_vision
from test_rnn import with_action_weights

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--num_episodes", "5", "--max_frames", "30", "--min_frames", "5", "--num_workers", "2",
        "--vae_batch_size", "8", "--vae_num_epoch", "1", "--validation_frames", "16", "--holdout_fraction", "0.25",
        "--rnn_size", "16", "--rnn_batch_size", "2", "--rnn_max_seq_len", "10", "--rnn_num_steps", "6",
        "--rnn_validation_every", "3"]


@pytest.fixture(scope="module")
def trained_vision(tmp_path_factory):
    """Tiny rollouts and a VAE trained on them, made once for the module."""
    results = tmp_path_factory.mktemp("memory")
    config = parse_config(["-c", str(SMOKE_CONFIG), "--results_dir", str(results), *TINY])
    extract(config)
    train_vision(config, "vae")
    return results


@pytest.fixture
def tiny(trained_vision, tmp_path):
    """tiny(--key value ...) -> a config whose results folder holds a copy of the tiny rollouts and VAE."""
    return copied_results(trained_vision, tmp_path, *TINY)


def test_series_holds_every_episode_in_the_documented_format(tiny):
    config = tiny()
    path = encode_series(config)
    assert path == series_path(config) == vision_dir(config, "vae") / "series.npz"
    series = load_series(config)
    episodes = list_episodes(Path(config.results_dir) / "smoke" / "CarRacing-v3" / "record")
    count = len(episodes)
    assert series["mu"].shape == series["logvar"].shape == (count, 30, 32) and series["mu"].dtype == np.float16
    assert series["action"].shape == (count, 30, 3) and series["action"].dtype == np.float16
    assert series["reward"].dtype == np.float16 and series["done"].dtype == bool
    assert series["length"].tolist() == [info.length for info in episodes]
    assert series["episode"].tolist() == [info.path.name for info in episodes]
    _, held_out = split_episodes(episodes, config.holdout_fraction, config.seed)
    assert series["episode"][series["held_out"]].tolist() == [info.path.name for info in held_out]
    for index, length in enumerate(series["length"]):
        assert series["done"][index, length - 1] and not series["done"][index, :length - 1].any()
        assert series["done"][index, length:].all() and not series["mu"][index, length:].any()
    assert not (vision_dir(config, "vae") / "series_parts").exists()


def test_series_encodings_match_the_vision_model(tiny):
    config = tiny()
    encode_series(config)
    series = load_series(config)
    model = load_vision_model(model_path(config, "vae"))
    obs = load_episode(Path(config.results_dir) / "smoke/CarRacing-v3/record" / str(series["episode"][1]))["obs"]
    mu, logvar = model.encode(obs.astype(np.float32) / 255.0)
    np.testing.assert_allclose(series["mu"][1, :len(obs)], mu.numpy(), atol=2e-2, rtol=1e-2)  # float16
    np.testing.assert_allclose(series["logvar"][1, :len(obs)], logvar.numpy(), atol=2e-2, rtol=1e-2)


def test_an_up_to_date_series_is_not_encoded_again_and_a_killed_one_resumes(tiny, monkeypatch):
    config = tiny()
    monkeypatch.setattr(memory, "CHUNK_EPISODES", 2)
    real_encode, calls, killed = memory.encode_episodes, [], []

    class Killed(Exception):
        pass

    def encode_then_die(encode, episodes, config, progress=None):
        calls.append([info.path.name for info in episodes])
        if len(calls) == 2 and not killed:
            killed.append(True)
            raise Killed  # the first run dies while encoding its second part
        return real_encode(encode, episodes, config, progress)

    monkeypatch.setattr(memory, "encode_episodes", encode_then_die)
    with pytest.raises(Killed):
        encode_series(config)
    assert len(list((vision_dir(config, "vae") / "series_parts").glob("part_*.npz"))) == 1
    calls.clear()
    encode_series(config)
    assert len(calls) == 2, "the finished part is reused: two of three parts are encoded"
    stamp = series_path(config).stat().st_mtime_ns
    calls.clear()
    encode_series(config)
    assert calls == [] and series_path(config).stat().st_mtime_ns == stamp


def test_series_refuses_a_missing_or_mismatched_vision_model(tiny):
    with pytest.raises(UserFacingError, match="vaegan.keras: no trained vision model"):
        encode_series(tiny("--vision", "vaegan"))
    with pytest.raises(UserFacingError, match="z_size=32, the config says z_size=16"):
        encode_series(tiny("--z_size", 16))
    with pytest.raises(UserFacingError, match="no series; run series.py --vision vae first"):
        train_memory(tiny())


def test_rnn_training_writes_model_log_initial_z_figures_and_metrics(tiny):
    config = tiny()
    encode_series(config)
    metrics = train_memory(config)
    folder = vision_dir(config, "vae")
    model = load_rnn(rnn_path(config))
    assert model.z_size == 32 and model.rnn_size == 16
    with open(folder / "rnn_training_log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["0", "1"]
    assert {"z_nll", "val_z_nll", "val_baseline_nll"} <= set(rows[0])
    assert float(rows[0]["val_baseline_nll"]) == pytest.approx(metrics["val_baseline_nll"])
    initial = json.loads((folder / "initial_z.json").read_text())
    series = load_series(config)
    assert np.array(initial["mu"]).shape == (int((~series["held_out"]).sum()), 32)
    np.testing.assert_allclose(initial["mu"], series["mu"][~series["held_out"], 0].astype(float))
    assert (folder / "figures" / "rnn_predictions_epoch_002.png").exists()
    assert json.loads((folder / "memory_metrics.json").read_text()) == metrics
    assert np.isfinite(metrics["val_z_nll"]) and np.isfinite(metrics["val_baseline_nll"])
    usage = metrics["action_usage"]  # how much M uses the actions: shuffled-action losses, held-action probes
    assert usage["losses"]["real"]["z_nll"] == pytest.approx(metrics["val_z_nll"], rel=1e-5)
    assert usage["z_nll_gain"] == pytest.approx(usage["losses"]["shuffled"]["z_nll"] - metrics["val_z_nll"])
    responses = usage["responses"]
    assert responses["starts"] == 1 and set(responses["actions"]) == set(PROBE_ACTIONS)
    assert all(responses["actions"]["coast"][kind] == 0.0 for kind in ("real", "real_reconstructed", "dream"))
    assert responses["actions"]["steer_left"]["real"] > 1e-3  # 20 steps of full lock turn the view
    del metrics["action_usage"]  # an M measured before action_usage existed gets it on the next run
    (folder / "memory_metrics.json").write_text(json.dumps(metrics))
    assert memory.memory_trained(config) and not memory.memory_measured(config)  # pipeline.py runs rnn_train again
    assert train_memory(config)["action_usage"]["responses"] == responses  # the probes replay exactly
    assert memory.memory_measured(config)


def test_the_held_action_probe_sees_no_response_from_an_m_that_ignores_actions(tiny):
    config = tiny()
    vision = load_vision_model(model_path(config, "vae"), config.z_size)
    rnn = with_action_weights(memory.build_rnn(config), 0.0)
    prefixes, finals, rewards = play_probes(config, [7])
    assert prefixes.shape == (1, PREFIX_STEPS + 1, 64, 64, 3) and finals.shape == (1, len(PROBE_ACTIONS), 64, 64, 3)
    again = play_probes(config, [7])
    np.testing.assert_array_equal(again[1], finals)  # each branch replays the same start
    z, dream_rewards = dream_probes(vision, rnn, prefixes)
    assert z.shape == (1, len(PROBE_ACTIONS), 32)
    np.testing.assert_allclose(z, np.repeat(z[:, :1], len(PROBE_ACTIONS), axis=1), atol=1e-6)  # no response
    assert not np.allclose(dream_probes(vision, with_action_weights(rnn, 1.0), prefixes)[0][0, 0], z[0, 0])


def test_more_steps_train_on_and_changed_settings_are_refused(tiny):
    encode_series(tiny())
    train_memory(tiny())
    train_memory(tiny("--rnn_num_steps", 9))
    with open(vision_dir(tiny(), "vae") / "rnn_training_log.csv") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["0", "1", "2"]
    with pytest.raises(Exception, match="rnn_size=16 there, 32 now"):
        train_memory(tiny("--rnn_size", 32))


def test_reward_and_done_heads_train_when_asked(tiny):
    config = tiny("--rnn_r_pred", 1, "--rnn_d_pred", 1, "--rnn_d_true_weight", 5)
    encode_series(config)
    metrics = train_memory(config)
    assert np.isfinite(metrics["val_reward_loss"]) and np.isfinite(metrics["val_done_loss"])


def test_the_scripts_run_from_the_command_line(tiny):
    config = tiny()
    for script in ("series.py", "rnn_train.py"):
        command = [sys.executable, str(ROOT / "WorldModels" / script), "-c", str(SMOKE_CONFIG),
                   "--results_dir", config.results_dir, *TINY]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
    assert "held-out NLL per latent dimension" in result.stdout


@pytest.mark.parametrize("damage", ["nan_action", "frames_checksum"])
def test_series_refuses_a_damaged_episode_promptly_in_one_line(tiny, damage):
    """An error met while tf.data streams an episode reaches the user as one line naming the file, the
    process exits (no hang), and series.py writes nothing."""
    config = tiny()
    damaged = sorted(Path(record_dir(config)).glob("episode_*.npz"))[-1]
    if damage == "nan_action":
        arrays = dict(np.load(damaged))
        arrays["action"] = arrays["action"].copy()
        arrays["action"][3, 0] = np.nan
        np.savez_compressed(damaged, **arrays)
    else:
        corrupt_frames(damaged)
    before = sorted(path.name for path in vision_dir(config).iterdir())
    command = [sys.executable, str(ROOT / "WorldModels" / "series.py"), "-c", str(SMOKE_CONFIG),
               "--results_dir", config.results_dir, *TINY]
    result = subprocess.run(command, capture_output=True, text=True, timeout=90)
    assert result.returncode == 1, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and damaged.name in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    if damage == "nan_action":  # found before any work: nothing written
        assert sorted(path.name for path in vision_dir(config).iterdir()) == before


def test_a_world_model_whose_parts_no_longer_match_is_refused_where_v_and_m_are_used(tiny):
    """V -> series -> M: a retrained V makes the series and M stale; a re-encoded series makes M stale.
    Every reader of V and M together (the agent, the dream, train.py) refuses in one line."""
    config = tiny()
    encode_series(config)
    train_memory(config)
    assert memory.world_model_mismatch(config) is None
    load_agent(config)
    vision = load_vision_model(model_path(config, "vae"), config.z_size)
    assert memory.prediction_pixel_errors(config, vision) is not None  # a matching world model is measured
    weights = vision.get_weights()
    vision.set_weights([weights[0] * 1.001, *weights[1:]])
    vision.save(model_path(config, "vae"))  # "retrained": another file
    for use in (load_agent, load_dream, world_fingerprint):
        with pytest.raises(UserFacingError, match="series.npz was encoded by another vae.keras"):
            use(config)
    # the vision measures (evaluate_vision.py, the report) leave M's predictions out instead of measuring them
    assert memory.memory_trained(config) and memory.prediction_pixel_errors(config, vision) is None
    encode_series(config)  # the series follows V; M is now the stale part
    with pytest.raises(UserFacingError, match="rnn.keras was trained on another series.npz .*rnn_checkpoint"):
        load_agent(config)
    with pytest.raises(UserFacingError, match="rnn_checkpoint"):
        train_memory(config)  # says what to remove (the checkpoint refuses to resume on other inputs)


def test_a_kill_after_an_epochs_log_row_redoes_that_epoch_and_its_figure(tiny, monkeypatch):
    encode_series(tiny())
    kill_after_epoch(monkeypatch, memory.PredictionFigures, 1)  # after epoch 2's log row and figure
    with pytest.raises(KeyboardInterrupt):
        train_memory(tiny())
    monkeypatch.undo()
    train_memory(tiny())
    folder = vision_dir(tiny(), "vae")
    with open(folder / "rnn_training_log.csv") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["0", "1"]  # epoch 2 redone, its row once
    assert sorted(path.name for path in (folder / "figures").glob("rnn_predictions_epoch_*.png")) == [
        "rnn_predictions_epoch_001.png", "rnn_predictions_epoch_002.png"]


def test_episodes_longer_than_max_frames_are_cut_and_said_so(tiny, capsys):
    config = tiny("--max_frames", 20)
    encode_series(config)
    assert "episodes are longer than max_frames=20 (up to 30 steps" in capsys.readouterr().out
    series = load_series(config)
    assert series["mu"].shape[1] == 20 and series["length"].max() == 20 and series["done"][:, 19].all()
