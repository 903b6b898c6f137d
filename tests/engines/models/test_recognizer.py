"""The MPFNet-style recognizer: shapes, both fusion variants, coordinate attention, progressive
training (deterministic by seed, learns a separable toy), sha256-checked weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engines.models.recognizer import (
    CoordinateAttention3d,
    Recognizer,
    RecognizerConfig,
    mirror_stack,
    n_parameters,
    normalize_stack,
)
from engines.train.recognizer import (
    RecognizerTrainConfig,
    _stage,
    main,
    predict,
    scores,
    train,
)
from engines.train.stacks import StackSet, load_stacks
from engines.weights import WeightsError, load_recognizer, save_recognizer


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as training uses: on a shared 2-core CPU a second one mostly waits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SMALL = RecognizerConfig(steps=3, size=16, widths=(4, 8, 8), n_aus=5, fusion_hidden=8)


def toy_set(n: int, seed: int, config: RecognizerConfig = SMALL) -> StackSet:
    """Stacks whose emotion is the pattern of motion in the ROI, mirror-symmetric like faces
    (training mirrors half the stacks): negative = down, positive = up, surprise = both halves
    moving outwards; plus noise and random magnitudes."""
    rng = np.random.default_rng(seed)
    t, s = config.steps, config.size
    emotion = rng.integers(0, 3, n)
    flow = rng.normal(0, 0.05, (n, 2, t, s, s)).astype(np.float32)
    pattern = np.zeros((3, 2, s, s), np.float32)  # (E, 2, S, S) apex motion per class
    pattern[0, 1], pattern[1, 1] = 1.0, -1.0
    pattern[2, 0, :, : s // 2], pattern[2, 0, :, s // 2 :] = -1.0, 1.0
    roi = np.zeros((s, s), np.float32)
    roi[s // 4 : 3 * s // 4, s // 4 : 3 * s // 4] = 1.0
    ramp = np.linspace(0.3, 1.0, t, dtype=np.float32)  # (T,) motion builds up to the apex
    magnitude = rng.uniform(0.5, 3.0, n).astype(np.float32)
    flow += (
        pattern[emotion][:, :, None]
        * roi
        * ramp[None, None, :, None, None]
        * magnitude[:, None, None, None, None]
    )
    mask = np.broadcast_to(roi, (n, s, s)).copy()
    aus = np.eye(config.n_aus, dtype=np.float32)[emotion]  # one AU per class
    return StackSet(
        torch.from_numpy(flow).half(),
        torch.from_numpy(mask).half(),
        torch.from_numpy(emotion).long(),
        torch.from_numpy(aus),
        torch.arange(n),
        torch.zeros(n, dtype=torch.long),
        ["toy"],
        [seed],
        list(range(config.n_aus)),
    )


def test_forward_shapes_and_both_variants():
    torch.manual_seed(0)
    model = Recognizer(SMALL).eval()
    flow, mask = torch.randn(5, 2, 3, 16, 16), torch.rand(5, 16, 16)
    out = model(flow, mask)
    for head in (out.general, out.prior, out.parallel, out.hierarchical):
        assert head.shape == (5, 3) and torch.isfinite(head).all()
    assert out.aus.shape == (5, 5)
    assert not torch.allclose(out.variant("P"), out.variant("C"))  # two different fusions
    probs = model.probabilities(flow, mask, "C")
    torch.testing.assert_close(probs.sum(-1), torch.ones(5))


@pytest.mark.parametrize(
    "shape",
    [
        (2, 8, 4, 12, 12),  # square maps
        (1, 16, 3, 6, 10),  # H != W, odd T: every profile split at its own length
    ],
)
def test_coordinate_attention_keeps_shape_and_gates(shape):
    torch.manual_seed(0)
    block = CoordinateAttention3d(shape[1]).eval()
    x = torch.rand(shape)
    y = block(x)
    assert y.shape == x.shape
    # gates are sigmoids: each output is the input scaled by a product of three (0, 1) gates
    assert (y.abs() <= x.abs() + 1e-6).all() and not torch.allclose(y, x)


def test_default_model_is_small():
    model = Recognizer(RecognizerConfig())
    assert n_parameters(model) * 4 < 1_000_000  # float32 bytes under 1 MB


def test_normalization_is_scale_free_and_mirror_is_an_involution():
    flow, mask = torch.randn(3, 2, 3, 16, 16), torch.rand(3, 16, 16)
    a, pa = normalize_stack(flow, mask)
    b, pb = normalize_stack(4.0 * flow, mask)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(pa, pb)
    assert pa.shape == (3, 3, 3, 16, 16)
    back = mirror_stack(*mirror_stack(flow, mask))
    torch.testing.assert_close(back[0], flow)
    torch.testing.assert_close(back[1], mask)
    mirrored, _ = mirror_stack(flow, mask)
    torch.testing.assert_close(mirrored[:, 0, :, :, 0], -flow[:, 0, :, :, -1])  # dx flips sign


FAST = RecognizerTrainConfig(encoder_epochs=8, fusion_epochs=8, batch=16, lr=1e-2)


def _train_small(seed: int):
    cfg = RecognizerTrainConfig(**{**FAST.__dict__, "seed": seed})
    config = RecognizerConfig(**SMALL.__dict__)
    return train(toy_set(96, 1), toy_set(30, 2), cfg, log=lambda s: None, model_config=config)


@pytest.mark.slow
def test_progressive_training_is_deterministic_and_learns():
    model_a, summary = _train_small(seed=0)
    model_b, _ = _train_small(seed=0)
    for (name, a), b in zip(
        model_a.state_dict().items(), model_b.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    model_c, _ = _train_small(seed=1)
    assert not torch.equal(model_a.general_head.weight, model_c.general_head.weight)
    report = scores(toy_set(60, 3), predict(model_a, toy_set(60, 3)))
    assert report["parallel"]["uf1"] > 0.8 and report["hierarchical"]["uf1"] > 0.8
    assert {row["stage"] for row in summary["stage1"]["history"]} == {1}
    assert model_a.config.live_variant in ("P", "C")


@pytest.mark.slow
def test_stage_two_leaves_the_encoders_alone():
    torch.manual_seed(0)
    model = Recognizer(RecognizerConfig(**SMALL.__dict__))
    rng = np.random.default_rng(0)
    train_set, val_set = toy_set(64, 1), toy_set(20, 2)
    _stage(model, 1, train_set, val_set, FAST, rng, log=lambda s: None)
    before = {
        f"{i}.{k}": v.clone()
        for i, m in enumerate(model.encoders())
        for k, v in m.state_dict().items()
    }
    fusion_before = model.parallel[0].weight.clone()
    _stage(model, 2, train_set, val_set, FAST, rng, log=lambda s: None)
    after = {
        f"{i}.{k}": v for i, m in enumerate(model.encoders()) for k, v in m.state_dict().items()
    }
    for name, value in before.items():  # weights AND BatchNorm statistics
        assert torch.equal(value, after[name]), name
    assert not torch.equal(fusion_before, model.parallel[0].weight)  # stage 2 trained fusion


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    model = Recognizer(SMALL).eval()
    path = tmp_path / "recognizer.pt"
    sha = save_recognizer(model, path)
    (tmp_path / "recognizer.json").write_text(json.dumps({"file": path.name, "sha256": sha}))
    return model, path


def test_weights_round_trip(weights):
    model, path = weights
    loaded, manifest = load_recognizer(path)
    flow, mask = torch.randn(2, 2, 3, 16, 16), torch.rand(2, 16, 16)
    torch.testing.assert_close(loaded(flow, mask).parallel, model(flow, mask).parallel)
    assert loaded.config == model.config and len(manifest["sha256"]) == 64


def test_corrupted_copy_is_refused(weights):
    _, path = weights
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"recognizer weights .* do not match their manifest"):
        load_recognizer(path)


def test_missing_weights_are_named(tmp_path):
    (tmp_path / "recognizer.json").write_text(json.dumps({"sha256": "0" * 64}))
    with pytest.raises(WeightsError, match=r"recognizer\.pt are missing"):
        load_recognizer(tmp_path / "recognizer.pt")


def test_shipped_weights_load_and_are_small():
    from engines.weights import DEFAULT_RECOGNIZER

    if not DEFAULT_RECOGNIZER.is_file():
        pytest.skip("no shipped recognizer weights")
    model, manifest = load_recognizer()
    assert DEFAULT_RECOGNIZER.stat().st_size < 1_000_000
    assert manifest["command"].startswith("python -m engines.train.recognizer")
    assert model.config.live_variant == manifest["live_variant"]


def test_bad_data_folder_exits_2(tmp_path, capsys):
    (tmp_path / "clip_0000.npz").write_bytes(b"not a zip")
    assert main(["--data", str(tmp_path), "--val-identities", "x"]) == 2
    assert "clip_0000.npz" in capsys.readouterr().err
    assert main(["--data", str(tmp_path / "nope"), "--val-identities", "x"]) == 2


def test_load_stacks_selects_identities(tmp_path):
    toy = toy_set(4, 0)
    for i, identity in enumerate(("a", "b")):
        np.savez(
            tmp_path / f"clip_{i:04d}.npz",
            flow=toy.flow.numpy(),
            mask=toy.mask.numpy(),
            emotion=np.array(["negative", "positive", "surprise", "positive"]),
            aus=toy.aus.numpy() > 0,
            au_names=np.arange(5),
            event=np.array([0, 0, 1, 1]),
            variant=np.array([0, 1, 0, 1]),
            identity=np.array(identity),
            seed=np.int64(i),
        )
    both = load_stacks([tmp_path])
    only_b = load_stacks([tmp_path], identities={"b"})
    assert len(both) == 8 and len(only_b) == 4 and only_b.identities == ["b"]
    assert both.group.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]  # expressions stay apart per clip
    assert len(load_stacks([tmp_path], exclude={"a"})) == 4
