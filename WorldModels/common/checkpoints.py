"""Resumable training: the one checkpoint helper, for every stage trained with fit().

TrainingCheckpoint keeps, in its folder, `checkpoint.weights.h5` (the model's weights, every
optimizer's state and the random generator's state) and `checkpoint.json` (epochs completed, and
the `inputs` it was trained from, such as a data file's fingerprint), both written atomically at
the end of every epoch and every `every_seconds` during one. A saved state is never one that
holds NaN, and is never resumed on other inputs. Before fit():

    initial_epoch = checkpoint.restore(model)
    model.fit(..., initial_epoch=initial_epoch, callbacks=[..., checkpoint])

The checkpoint goes last among the callbacks: an epoch it records has had its log row and figures
written, and a run killed before it records one does that epoch again (truncate_log drops its row).

A run killed mid-epoch resumes from its last save: the weights of that moment, and the
interrupted epoch's pass over the data started again.
"""

import csv
import io
import json
import math
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

import common.tensorflow_settings  # noqa: F401  (first: TensorFlow reads its settings when imported)

# isort: split
import h5py
import keras

from common.errors import UserFacingError
from common.files import atomic_path, write_json_atomic, write_text_atomic


class TrainingCheckpoint(keras.callbacks.Callback):
    def __init__(self, folder, every_seconds, inputs=None, weight_upgrades=(), retrain_hint=None):
        super().__init__()
        self.folder, self.every_seconds, self.inputs = Path(folder), every_seconds, inputs or {}
        # what the refusal to resume on other inputs tells the user to do
        self.retrain_hint = retrain_hint or f"remove that folder ({self.folder}) to train afresh on the current ones"
        self.weight_upgrades = weight_upgrades  # see load_upgraded
        self.weights_path = self.folder / "checkpoint.weights.h5"
        self.state_path = self.folder / "checkpoint.json"
        self.epoch, self.last_save = 0, time.monotonic()

    def epochs_done(self):
        """Epochs completed by the saved state (0 if none, or if it was trained from other inputs)."""
        if not self.state_path.exists():
            return 0
        state = json.loads(self.state_path.read_text())
        return state["epochs_done"] if state.get("inputs", self.inputs) == self.inputs else 0

    def restore(self, model):
        """Load the saved state into `model` (built and compiled); return the epochs already done.
        Raises UserFacingError if it was trained from other inputs."""
        if not self.state_path.exists():
            return 0
        saved_inputs = json.loads(self.state_path.read_text()).get("inputs", self.inputs)  # older: none recorded
        if saved_inputs != self.inputs:
            raise UserFacingError(f"{self.folder}: trained from other inputs ({saved_inputs} there, {self.inputs} "
                                  f"now); {self.retrain_hint}")
        optimizer = getattr(model, "optimizer", None)  # absent until compile()
        if optimizer is not None and not optimizer.built:
            # Optimizers create their state lazily; built now, it is restored rather than skipped.
            optimizer.build(model.trainable_variables)
        load_upgraded(model.load_weights, self.weights_path, self.weight_upgrades)
        return json.loads(self.state_path.read_text())["epochs_done"]

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if time.monotonic() - self.last_save >= self.every_seconds:
            self._save(epochs_done=self.epoch, logs=logs)

    def on_epoch_end(self, epoch, logs=None):
        self._save(epochs_done=epoch + 1, logs=logs)

    def _save(self, epochs_done, logs):
        if not all(math.isfinite(float(value)) for value in (logs or {}).values()):
            return  # keep the last finite state; TerminateOnNaN stops the run
        with atomic_path(self.weights_path) as temporary:
            self.model.save_weights(temporary)
        write_json_atomic(self.state_path, {"epochs_done": epochs_done, "inputs": self.inputs})
        self.last_save = time.monotonic()


def load_upgraded(load, path, upgrades):
    """load(path), or, if that fails and one of `upgrades` applies to the file's weights, load(an
    upgraded temporary copy); the file itself is left as it is. path: a .keras file or a .weights.h5
    file. upgrades: functions that rename groups in an h5py weights file opened for writing and
    return True if they changed anything (a model saved by an earlier version of a network)."""
    try:
        return load(path)
    except ValueError as error:
        if not upgrades:
            raise
        failure = error
    with tempfile.TemporaryDirectory() as folder:
        copy, changed = Path(folder) / Path(path).name, False
        if zipfile.is_zipfile(path):  # a .keras file: the weights are its model.weights.h5
            with zipfile.ZipFile(path) as original, zipfile.ZipFile(copy, "w") as upgraded:
                for member in original.namelist():
                    data = original.read(member)
                    if member == "model.weights.h5":
                        weights = io.BytesIO(data)
                        changed = _upgrade_weights(weights, upgrades)
                        data = weights.getvalue()
                    upgraded.writestr(member, data)
        else:
            shutil.copyfile(path, copy)
            with open(copy, "r+b") as weights:
                changed = _upgrade_weights(weights, upgrades)
        if not changed:
            raise failure
        return load(copy)


def _upgrade_weights(weights_file, upgrades):
    """Apply every upgrade to weights_file (a writable binary h5 file) in place; True if any changed it."""
    with h5py.File(weights_file, "r+") as weights:
        return any([upgrade(weights) for upgrade in upgrades])  # a list: every upgrade runs


def truncate_log(csv_path, epochs):
    """Keep a CSVLogger file's header and its first `epochs` rows (a resumed run rewrites the rest)."""
    csv_path = Path(csv_path)
    if not csv_path.exists():
        return
    rows = list(csv.reader(io.StringIO(csv_path.read_text())))
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows[:1 + epochs])
    write_text_atomic(csv_path, buffer.getvalue())
