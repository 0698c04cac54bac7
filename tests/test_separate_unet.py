"""U-Net mask network: layout from Jansson et al. 2017, shapes, mask range."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from voiceapp.errors import ConfigError
from voiceapp.nets.unet import UNet, UNetConfig


def test_default_layout_matches_the_paper():
    net = UNet(UNetConfig())
    convs = [layer[0] for layer in net.encoder]
    assert [c.out_channels for c in convs] == [16, 32, 64, 128, 256, 512]
    assert all(c.kernel_size == (5, 5) and c.stride == (2, 2) for c in convs)
    assert all(isinstance(layer[1], nn.BatchNorm2d) for layer in net.encoder)
    assert all(isinstance(layer[2], nn.LeakyReLU) and layer[2].negative_slope == 0.2 for layer in net.encoder)
    deconvs = [layer[0] for layer in net.decoder]
    assert all(isinstance(d, nn.ConvTranspose2d) for d in deconvs)
    assert [d.out_channels for d in deconvs] == [256, 128, 64, 32, 16, 1]
    with_dropout = [any(isinstance(m, nn.Dropout) and m.p == 0.5 for m in layer) for layer in net.decoder]
    assert with_dropout == [True, True, True, False, False, False]


@pytest.mark.parametrize("cfg", [UNetConfig.tiny(), UNetConfig(base_channels=4, depth=4, max_channels=32)])
def test_mask_shape_and_range(cfg):
    net = UNet(cfg).eval()
    x = torch.rand(3, 1, 64, 32) * 4 - 2
    with torch.inference_mode():
        mask = net(x)
    assert mask.shape == x.shape
    assert float(mask.min()) >= 0.0 and float(mask.max()) <= 1.0


def test_skip_connections_carry_fine_detail():
    """Gradients reach the input through the skips: a pixel change moves the mask at that pixel."""
    net = UNet(UNetConfig.tiny()).eval()
    x = torch.rand(1, 1, 32, 32, requires_grad=True)
    net(x)[0, 0, 10, 10].backward()
    assert float(x.grad.abs()[0, 0, 8:13, 8:13].sum()) > 0


def test_bad_config_is_refused():
    with pytest.raises(ConfigError):
        UNetConfig(depth=0)
    with pytest.raises(ConfigError):
        UNetConfig(kernel_size=4)
    with pytest.raises(ConfigError):
        UNetConfig.preset("huge")
