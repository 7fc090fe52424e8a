"""`train-counter --device/--threads`: the MLPs run where lensdb.device says, and say so."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from lensdb.cli.app import app
from lensdb.counting.config import StageConfig, TrainConfig
from lensdb.counting.mlp import MlpPredictor, predict_mlp, weights_device
from lensdb.counting.train import fit_mlp
from lensdb.errors import LensDBError

runner = CliRunner()
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")


def test_device_and_threads_in_the_report_and_the_stored_metrics(store3):
    import lensdb

    before = torch.get_num_threads()
    try:
        result = runner.invoke(app, ["train-counter", "--store", str(store3.root), "--json",
                                     "--classes", "person", "--method", "mlp", "--device", "cpu",
                                     "--threads", "1"])
    finally:
        torch.set_num_threads(before)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["device"] == "cpu" and report["threads"] == 1
    assert report["config"]["device"] == "cpu"
    models = lensdb.open(str(store3.root)).info()["count_models"]
    assert models and all(m["metrics"]["device"] == "cpu" for m in models)


def test_auto_is_recorded_as_the_device_it_resolved_to(store3):
    result = runner.invoke(app, ["train-counter", "--store", str(store3.root), "--classes",
                                 "person", "--method", "mlp", "--threads", "1"],
                           env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert f"MLPs on {expected}, 1 torch threads" in result.stdout


@NO_GPU
def test_cuda_where_there_is_none_is_the_device_error_and_trains_nothing(store3):
    import lensdb

    result = runner.invoke(app, ["train-counter", "--store", str(store3.root), "--device",
                                 "cuda"])
    assert isinstance(result.exception, LensDBError)
    assert "sees 0 CUDA device" in str(result.exception)
    assert lensdb.open(str(store3.root)).info()["count_models"] == []


@NO_GPU
def test_cuda_where_there_is_none_is_one_line_on_stderr(store3):
    r = subprocess.run([sys.executable, "-m", "lensdb.cli.app", "train-counter", "--store",
                        str(store3.root), "--device", "cuda:1"], capture_output=True, text=True,
                       timeout=120)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode != 0 and len(lines) == 1 and "sees 0 CUDA device" in lines[0], r.stderr


@pytest.mark.parametrize("kwargs, message", [({"device": "gpu"}, "not one of"),
                                             ({"threads": 0}, "--threads")])
def test_bad_device_or_threads(kwargs, message):
    with pytest.raises(LensDBError, match=message):
        TrainConfig(**kwargs)


def test_fit_mlp_learns_on_the_resolved_device_and_predicts_there():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    y = np.clip(2 + x[:, 0] + 0.5 * x[:, 1], 0, None).astype(np.float32)
    stage = StageConfig(lr=3e-3, weight_decay=0.0, batch_size=64, max_epochs=15, patience=5)
    auto = fit_mlp(x[:200], y[:200], x[200:], y[200:], stage, seed=3, device="auto")
    cpu = fit_mlp(x[:200], y[:200], x[200:], y[200:], stage, seed=3, device="cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert auto.device == expected and str(weights_device(auto.model)).startswith(expected)
    held = np.mean(np.abs(predict_mlp(auto.model, x[200:]) - y[200:]))
    assert held < 0.7 * np.mean(np.abs(y[200:] - y[:200].mean()))  # it learned
    if expected == "cpu":  # same seed, same device: the same model
        assert np.array_equal(predict_mlp(auto.model, x), predict_mlp(cpu.model, x))
    state = {k: v.cpu() for k, v in auto.model.state_dict().items()}
    loaded = MlpPredictor.from_state(state, {"dim": 8, "size": "tiny"}, device=auto.device)
    assert np.allclose(loaded.predict(x), predict_mlp(auto.model, x), atol=1e-5)
