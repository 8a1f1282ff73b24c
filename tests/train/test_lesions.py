"""Training smoke test: a few steps on phantom slices, resume, ONNX export, reload, compare."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the 'train' extra (torch)")
pytest.importorskip("monai", reason="training needs the 'train' extra (monai)")

from pneumolens import models
from pneumolens.errors import InputError, ModelError
from pneumolens.train.config import load_config
from pneumolens.train.data import ZENODO_HOLDOUT_START
from pneumolens.train.export import MAX_ABS_DIFF, export_recipe
from pneumolens.train.lesions import lesion_loss, train

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "configs" / "lesions_smoke.toml"


def _smoke_config(tmp_path: Path):
    cfg = load_config(SMOKE)
    train_cfg = dataclasses.replace(cfg.train, out_dir=str(tmp_path / "run"))
    export_cfg = dataclasses.replace(cfg.export, onnx=str(tmp_path / "run" / "smoke.onnx"))
    return dataclasses.replace(cfg, train=train_cfg, export=export_cfg)


def test_smoke_train_export_reload(tmp_path: Path) -> None:
    cfg = _smoke_config(tmp_path)
    best = train(cfg, progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    assert all(np.isfinite(r["loss"]) for r in log)

    report = export_recipe(cfg, best)
    assert report["max_abs_diff"] <= MAX_ABS_DIFF
    model = models.load(report["onnx"])
    assert model.input_size == 64
    x = np.random.default_rng(1).random((5, 1, 64, 64), dtype=np.float32)
    prob = model.run(x)
    assert prob.shape == (5, 3, 64, 64)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, atol=1e-5)

    # A changed byte must be caught by the checksum.
    onnx_path = Path(report["onnx"])
    data = bytearray(onnx_path.read_bytes())
    data[-1] ^= 0xFF
    onnx_path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum mismatch"):
        models.load(onnx_path)


def test_resume_continues_after_last_epoch(tmp_path: Path) -> None:
    cfg = _smoke_config(tmp_path)
    train(cfg, progress=False, stop_after_epoch=1)
    assert len((tmp_path / "run" / "log.jsonl").read_text().splitlines()) == 1
    train(cfg, resume=True, progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    assert log[1]["step"] == 2 * log[0]["step"]


@pytest.mark.parametrize(
    ("kinds", "target_value"),
    [([0, 0], 1), ([1, 1], 1), ([1, 1], 2), ([0, 1], 2)],
)
def test_loss_lower_for_correct_prediction(kinds: list[int], target_value: int) -> None:
    target = torch.zeros(2, 16, 16, dtype=torch.uint8)
    target[:, 4:12, 4:12] = target_value
    good = torch.full((2, 3, 16, 16), -8.0)
    good[:, 0][target == 0] = 8.0
    good[:, target_value][target == target_value] = 8.0
    bad = good.flip(1)
    k = torch.tensor(kinds, dtype=torch.int8)
    assert float(lesion_loss(good, target, k)) < 0.1 < float(lesion_loss(bad, target, k))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[data]\nbogus = 1\n", "unknown keys"),
        ("[nope]\n", "unknown sections"),
        ("[data\n", "not valid TOML"),
        ('[data]\nweight_extensive = "x"\n', "weight_extensive = 'x' is not a float"),
        ("[train]\nepochs = 1.5\n", "epochs = 1.5 is not a int"),
        ("[data]\nzenodo = 1\n", "zenodo = 1 is not a bool"),
        ("[data]\nzenodo_extra = [1442, 1258]\n", r"zenodo_extra = \[1442, 1258\] is not a block"),
        ("[data]\nmedseg_val = [40]\n", r"medseg_val = \[40\] is not a block"),
    ],
)
def test_bad_config_is_input_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_config(path)


def test_config_numbers_accept_ints_for_floats(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text("[data]\nweight_extensive = 4\n[model]\nchannels = [8, 16]\nstrides = [2]\n")
    cfg = load_config(path)
    assert cfg.data.weight_extensive == 4 and cfg.model.channels == (8, 16)


def test_missing_data_folder_is_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PNEUMOLENS_SHARED_DATA", raising=False)
    path = tmp_path / "recipe.toml"
    path.write_text(f'[data]\nroot = "no/such/folder"\n[train]\nout_dir = "{tmp_path / "run"}"\n')
    with pytest.raises(InputError, match="training data folder not found"):
        train(load_config(path), progress=False)
    assert not (tmp_path / "run").exists(), "bad input must leave no run folder"


def test_extensive_samples_are_drawn_more_often() -> None:
    from pneumolens.train import data as D
    from pneumolens.train.lesions import sample_weights

    n = 4
    samples = D.SampleSet(
        np.zeros((n, 8, 8), np.float32),
        np.zeros((n, 8, 8), np.uint8),
        np.zeros(n, np.int8),
        ["zenodo/a", "zenodo/b", "medseg/c", "lung1/z1v0"],
        np.array([0.1, 0.6, np.nan, 0.3], np.float32),
    )
    cfg = load_config(SMOKE)
    data = dataclasses.replace(
        cfg.data, weight_zenodo=1.0, weight_medseg=2.0, weight_inserted=1.0, weight_extensive=3.0, extensive_fraction=0.3
    )
    w = sample_weights(samples, dataclasses.replace(cfg, data=data))
    np.testing.assert_allclose(w * (1 + 3 + 2 + 3), [1, 3, 2, 3])


@pytest.mark.parametrize(("schedule", "stop_step"), [("onecycle", 2), ("cosine_restarts", 4)])
def test_stopped_and_resumed_run_equals_uninterrupted_run(tmp_path: Path, schedule: str, stop_step: int) -> None:
    """Stop mid-epoch, resume from last.pt: bit-identical weights, optimiser state and log."""

    def run_cfg(name: str):
        cfg = _smoke_config(tmp_path / name)
        t = dataclasses.replace(
            cfg.train, epochs=2, samples_per_epoch=12, schedule=schedule, restart_steps=2, warmup_steps=1
        )
        return dataclasses.replace(cfg, train=t)

    full, parts = run_cfg("full"), run_cfg("parts")
    train(full, progress=False)
    train(parts, progress=False, stop_after_step=stop_step)
    stopped = torch.load(tmp_path / "parts" / "run" / "last.pt", weights_only=False)
    assert stopped["step"] == stop_step and stopped["position"] is not None  # really stopped mid-epoch
    np.random.seed(123)  # disturb the global random states: the checkpoint must restore them
    torch.manual_seed(123)
    train(parts, resume=True, progress=False)

    a = torch.load(tmp_path / "full" / "run" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "parts" / "run" / "last.pt", weights_only=False)
    assert a["step"] == b["step"] == 6
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in ("exp_avg", "exp_avg_sq"))
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"]
    log_a = [json.loads(x) for x in (tmp_path / "full" / "run" / "log.jsonl").read_text().splitlines()]
    log_b = [json.loads(x) for x in (tmp_path / "parts" / "run" / "log.jsonl").read_text().splitlines()]
    assert [(r["loss"], r["lr"]) for r in log_a] == [(r["loss"], r["lr"]) for r in log_b]


def test_cosine_restarts_schedule() -> None:
    from pneumolens.train.config import TrainConfig
    from pneumolens.train.lesions import cycle_ends, lr_factor

    t = TrainConfig(schedule="cosine_restarts", warmup_steps=10, restart_steps=100, restart_mult=2, min_lr_fraction=0.0)
    assert lr_factor(0, t) == pytest.approx(0.1)
    assert lr_factor(10, t) == pytest.approx(1.0)  # top of the first cycle
    assert lr_factor(60, t) == pytest.approx(0.5)  # half-way down
    assert lr_factor(110, t) == pytest.approx(1.0)  # restart
    assert lr_factor(210, t) == pytest.approx(0.5)  # second cycle is 200 steps long
    assert cycle_ends(t, 1000) == {110, 310, 710}


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("lesions*.toml")), ids=lambda p: p.name)
def test_shipped_recipes_load(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.train.schedule in ("onecycle", "cosine_restarts")
    if cfg.data.zenodo_val:  # a validation block inside the training block, never the test block
        assert 0 <= cfg.data.zenodo_val[0] < cfg.data.zenodo_val[1] <= ZENODO_HOLDOUT_START
    if cfg.data.zenodo_extra:  # trained-on parts of the held-out block lie inside it
        assert ZENODO_HOLDOUT_START <= cfg.data.zenodo_extra[0] < cfg.data.zenodo_extra[1]


@pytest.mark.parametrize(
    ("zenodo_extra", "medseg_extra"), [((1258, 1442), (47, 54)), ((1258, 1614), (47, 68))], ids=["half", "all"]
)
def test_training_on_part_of_the_held_out_blocks(shared_data: Path, zenodo_extra: tuple, medseg_extra: tuple) -> None:
    """Cross-fitting: the chosen part of the held-out blocks is trained on, the rest validates."""
    from pneumolens.train.lesions import build_sets

    cfg = load_config(SMOKE)
    data = dataclasses.replace(
        cfg.data, root=str(shared_data), zenodo=True, medseg=True, hu_volumes=False, phantoms=0, zenodo_limit=5,
        zenodo_val=(), medseg_val=(), zenodo_val_step=1, zenodo_extra=zenodo_extra, medseg_extra=medseg_extra,
    )
    train_set, val_set, _ = build_sets(dataclasses.replace(cfg, data=data))
    zenodo = sorted(int(n.split("/")[1][:4]) for n in train_set.names if n.startswith("zenodo/"))
    medseg = sorted(int(n.split("/")[1]) for n in train_set.names if n.startswith("medseg/"))
    held_zenodo = [int(n.split("/")[1][:4]) for n in val_set.names if n.startswith("zenodo/")]
    held_medseg = [int(n.split("/")[1]) for n in val_set.names if n.startswith("medseg/")]
    assert zenodo[:5] == list(range(5)) and zenodo[5:] == list(range(*zenodo_extra))
    assert [m for m in medseg if m >= 47] == [m for m in (47, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 67) if m < medseg_extra[1]]
    assert not set(held_zenodo) & set(zenodo) and not set(held_medseg) & set(medseg)
    if zenodo_extra[1] < 1614:
        assert held_zenodo[:1] == [zenodo_extra[1]] and held_medseg == [54, 55, 56, 57, 58, 67][: len(held_medseg)]
        assert len(held_medseg) == 6
    else:
        assert len(val_set) == 0
