"""The four RVC/VITS training losses (reference/rvc-facts.md §4). Inputs are lists over discriminators."""

from __future__ import annotations

import torch


def discriminator_loss(real_outputs: list[torch.Tensor],
                       fake_outputs: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """LSGAN: sum over discriminators of mean((1 - D(y))^2) + mean(D(y_hat)^2). Also per-discriminator parts."""
    total = torch.zeros((), device=real_outputs[0].device)
    real_parts, fake_parts = [], []
    for d_real, d_fake in zip(real_outputs, fake_outputs):
        real_loss = torch.mean((1 - d_real.float()) ** 2)
        fake_loss = torch.mean(d_fake.float() ** 2)
        total = total + real_loss + fake_loss
        real_parts.append(real_loss.detach())
        fake_parts.append(fake_loss.detach())
    return total, real_parts, fake_parts


def generator_loss(fake_outputs: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """LSGAN: sum over discriminators of mean((1 - D(y_hat))^2)."""
    total = torch.zeros((), device=fake_outputs[0].device)
    parts = []
    for d_fake in fake_outputs:
        loss = torch.mean((1 - d_fake.float()) ** 2)
        total = total + loss
        parts.append(loss.detach())
    return total, parts


def feature_loss(fmap_real: list[list[torch.Tensor]], fmap_fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """Feature matching: sum over discriminators and layers of mean|fmap_r - fmap_g| (weight c_fm applied by caller)."""
    total = torch.zeros((), device=fmap_real[0][0].device)
    for layers_real, layers_fake in zip(fmap_real, fmap_fake):
        for real, fake in zip(layers_real, layers_fake):
            total = total + torch.mean(torch.abs(real.detach().float() - fake.float()))
    return total


def kl_loss(z_p: torch.Tensor, logs_q: torch.Tensor, m_p: torch.Tensor, logs_p: torch.Tensor,
            z_mask: torch.Tensor) -> torch.Tensor:
    """KL(q || p) estimate: sum((logs_p - logs_q - 0.5 + 0.5 (z_p - m_p)^2 exp(-2 logs_p)) * mask) / sum(mask)."""
    z_p, logs_q, m_p, logs_p, z_mask = (t.float() for t in (z_p, logs_q, m_p, logs_p, z_mask))
    kl = logs_p - logs_q - 0.5 + 0.5 * ((z_p - m_p) ** 2) * torch.exp(-2.0 * logs_p)
    return torch.sum(kl * z_mask) / torch.sum(z_mask)
