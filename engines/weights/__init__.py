"""Shipped spotter weights: save, verify (sha256 against the manifest), load.

Layout of ``engines/weights/``:

    spotter.pt      torch.save of {"format", "config" (SpotterConfig fields), "state_dict",
                    "feature_names"}: plain tensors, dicts, lists and strings only, so
                    ``torch.load(weights_only=True)`` reads it
    manifest.json   {"file": "spotter.pt", "sha256": ..., "n_features": ...,
                    "feature_names_sha256": ..., "command": ..., ...}
                    (written by engines.train.spotter)
    recognizer.pt   {"format", "config" (RecognizerConfig fields), "state_dict"}
    recognizer.json the recognizer's manifest, same checks (written by engines.train.recognizer)

``load_spotter`` hashes the file's bytes and compares them with the manifest BEFORE
unpickling anything, then loads those same bytes (no second read that could differ).

Example:
    model, manifest = load_spotter()                       # the shipped weights
    model, manifest = load_spotter("run/spotter.pt", expected_features=136)
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engines.errors import WeightsError

if TYPE_CHECKING:  # torch is imported by the functions that load or save a model, not here:
    # a live run whose ONNX graphs are cached only checks the weights' sha256 (start-up)
    import torch

    from engines.models.recognizer import Recognizer
    from engines.models.spotter import Spotter, SpotterConfig

FORMAT = "mexlive-spotter/v1"
# the manifest's "input": raw region rows, region rows against the person's noise
# (engines/inputs.py), landmark-node rows (engines/node_inputs.py)
KNOWN_INPUTS = ("raw", "motion", "nodes/v1")
WEIGHTS_DIR = Path(__file__).resolve().parent
DEFAULT_WEIGHTS = WEIGHTS_DIR / "spotter.pt"
MANIFEST_NAME = "manifest.json"
RECOGNIZER_FORMAT = "mexlive-recognizer/v1"
DEFAULT_RECOGNIZER = WEIGHTS_DIR / "recognizer.pt"
RECOGNIZER_MANIFEST = (
    "recognizer.json"  # its own file: engines.train.spotter rewrites manifest.json
)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    return sha256_bytes(Path(path).read_bytes())


def config_dict(config: SpotterConfig) -> dict[str, int]:
    """The SpotterConfig's init fields (the derived ``ssm`` is rebuilt on load)."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.init}


def save_spotter(model: Spotter, path: str | Path, feature_names: list[str] | None = None) -> str:
    """Write the checkpoint; returns its sha256."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "config": config_dict(model.config),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "feature_names": list(feature_names or []),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    path.write_bytes(data)
    return sha256_bytes(data)


def read_manifest(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights manifest {path} is missing")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"weights manifest {path} is unreadable: {exc}") from None
    if not isinstance(manifest, dict) or "sha256" not in manifest:
        raise WeightsError(f"weights manifest {path} has no sha256")
    return manifest


def verified_bytes(
    path: Path, manifest: str | Path | dict[str, Any] | None, what: str, hint: str
) -> tuple[bytes, dict[str, Any]]:
    """(the file's bytes, the manifest as a dict) once the bytes' sha256 matches the manifest
    (``manifest.json`` beside ``path`` when None); read once: what is loaded was checked.

    Raises:
        WeightsError: missing file or manifest, a manifest written for another file, or a
            sha256 mismatch (naming the file and both hashes).
    """
    if not path.is_file():  # before the manifest: the file asked for is what the person named
        raise WeightsError(f"{what} {path} are missing ({hint})")
    if manifest is None:
        manifest = path.parent / MANIFEST_NAME
    if not isinstance(manifest, dict):
        if not Path(manifest).is_file():  # name the weights too: they are what was asked for
            raise WeightsError(
                f"{what} {path} cannot be checked: weights manifest {manifest} is missing"
            )
        manifest = read_manifest(manifest)
    named = manifest.get("file")
    if named and named != path.name:
        raise WeightsError(f"the manifest describes {named}, not {path.name}")
    data = path.read_bytes()
    actual, expected = sha256_bytes(data), str(manifest["sha256"])
    if actual != expected:
        raise WeightsError(
            f"{what} {path} do not match their manifest: sha256 {actual}, "
            f"manifest says {expected} (altered or partly written file; retrain or restore it)"
        )
    return data, manifest


def load_spotter(
    path: str | Path | None = None,
    manifest: str | Path | dict[str, Any] | None = None,
    expected_features: int | None = None,
    map_location: str | torch.device = "cpu",
    feature_names: Sequence[str] | None = None,
) -> tuple[Spotter, dict[str, Any]]:
    """Verify and load spotter weights; returns (model in eval mode, manifest).

    Args:
        path: the .pt file (default ``engines/weights/spotter.pt``).
        manifest: the manifest as a dict or a path (default ``manifest.json`` beside ``path``).
        expected_features: the feature width the caller will feed; a mismatch raises.
        feature_names: the raw feature layout the caller has; the width expected is then the
            model's input for it (``engines/inputs.py``: the manifest's ``"input"`` says
            whether the model reads the raw rows or the normalised motion rows).

    Raises:
        WeightsError: missing file or manifest, sha256 mismatch (naming the file and both
            hashes), a manifest written for another file, an unreadable checkpoint, or the
            wrong number of features.
    """
    import torch

    from engines.models.spotter import Spotter, SpotterConfig

    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    data, manifest = verified_bytes(
        path, manifest, "spotter weights", "train with python -m engines.train.spotter"
    )
    try:
        payload = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
        config = SpotterConfig(**payload["config"])
        model = Spotter(config)
        model.load_state_dict(payload["state_dict"])
    except Exception as exc:  # a verified file that still does not load: say which one
        raise WeightsError(f"spotter weights {path} cannot be loaded: {exc}") from None
    if payload.get("format") != FORMAT:
        raise WeightsError(
            f"spotter weights {path}: format {payload.get('format')!r}, not {FORMAT}"
        )
    _check_width(path, config.n_features, manifest, expected_features, feature_names)
    model.eval()
    return model, manifest


def verify_spotter(
    path: str | Path | None = None,
    manifest: str | Path | dict[str, Any] | None = None,
    feature_names: Sequence[str] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """(path, manifest) of spotter weights whose sha256 and width check out, without torch.

    For a backend that runs a graph exported earlier from these very bytes (the ONNX cache
    is named by their sha256): the same errors as ``load_spotter`` for a missing or altered
    file, and for a wrong width when the manifest gives the width (``n_features``; when it
    does not, only loading the model can tell).
    """
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    _, manifest = verified_bytes(
        path, manifest, "spotter weights", "train with python -m engines.train.spotter"
    )
    width = manifest.get("n_features", (manifest.get("model") or {}).get("n_features"))
    if isinstance(width, int):
        _check_width(path, width, manifest, None, feature_names)
    return path, manifest


def _check_width(
    path: Path,
    n_features: int,
    manifest: dict[str, Any],
    expected_features: int | None,
    feature_names: Sequence[str] | None,
) -> None:
    """Refuse weights whose input layout is not what the caller feeds: by the manifest's
    ``input`` (a layout this version does not know), its layout hash, then the width."""
    layout = manifest.get("input", "raw")
    if layout not in KNOWN_INPUTS:
        raise WeightsError(
            f"spotter weights {path} read the input layout {layout!r}, which this version "
            f"does not know ({', '.join(KNOWN_INPUTS)}); retrain with "
            "python -m engines.train.spotter"
        )
    if feature_names is not None:
        from engines.inputs import model_input_names

        names = model_input_names(manifest, feature_names)
        expected_features = len(names)
        recorded = manifest.get("feature_names_sha256")
        if recorded and recorded != names_sha256(names):
            raise WeightsError(
                f"spotter weights {path} were trained on another {layout!r} layout "
                f"(feature_names_sha256 {str(recorded)[:12]}, this version's "
                f"{names_sha256(names)[:12]}): they would be misread; retrain on the current "
                "layout"
            )
    if expected_features is not None and n_features != expected_features:
        raise WeightsError(
            f"spotter weights {path} take {n_features} features, "
            f"the features here have {expected_features} (retrain on the current layout)"
        )


def names_sha256(names: Sequence[str]) -> str:
    """sha256 of the input names joined by newlines: one value per input layout (the
    manifest's ``feature_names_sha256``)."""
    return sha256_bytes("\n".join(names).encode())


def save_recognizer(model: Recognizer, path: str | Path) -> str:
    """Write the recognizer checkpoint; returns its sha256."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": RECOGNIZER_FORMAT,
        "config": {**dataclasses.asdict(model.config), "widths": list(model.config.widths)},
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    path.write_bytes(data)
    return sha256_bytes(data)


def load_recognizer(
    path: str | Path | None = None,
    manifest: str | Path | dict[str, Any] | None = None,
) -> tuple[Recognizer, dict[str, Any]]:
    """Verify (sha256 against ``recognizer.json`` beside it) and load recognizer weights;
    returns (model in eval mode, manifest). Raises WeightsError like ``load_spotter``."""
    import torch

    from engines.models.recognizer import Recognizer, RecognizerConfig

    path = Path(path) if path is not None else DEFAULT_RECOGNIZER
    if manifest is None:
        manifest = path.parent / RECOGNIZER_MANIFEST
    data, manifest = verified_bytes(
        path, manifest, "recognizer weights", "train with python -m engines.train.recognizer"
    )
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        model = Recognizer(RecognizerConfig(**payload["config"]))
        model.load_state_dict(payload["state_dict"])
    except Exception as exc:  # a verified file that still does not load: say which one
        raise WeightsError(f"recognizer weights {path} cannot be loaded: {exc}") from None
    if payload.get("format") != RECOGNIZER_FORMAT:
        raise WeightsError(
            f"recognizer weights {path}: format {payload.get('format')!r}, not {RECOGNIZER_FORMAT}"
        )
    model.eval()
    return model, manifest


def verify_recognizer(
    path: str | Path | None = None, manifest: str | Path | dict[str, Any] | None = None
) -> tuple[Path, dict[str, Any]]:
    """(path, manifest) of recognizer weights whose sha256 checks out, without torch."""
    path = Path(path) if path is not None else DEFAULT_RECOGNIZER
    if manifest is None:
        manifest = path.parent / RECOGNIZER_MANIFEST
    _, manifest = verified_bytes(
        path, manifest, "recognizer weights", "train with python -m engines.train.recognizer"
    )
    return path, manifest
