# Copyright (c) mmsfc contributors. All rights reserved.
import math

import pytest
import torch

from mmsfc.models.losses import IRNAffinityDisplacementLoss


def brute_force(edge_logits, disp, label, radius):
    """The IRN losses by enumerating every pair with loops (one image)."""
    height, width = label.shape
    prob = torch.sigmoid(edge_logits[0, 0]).double()
    disp = disp[0].double()
    sums = dict(bg=0.0, fg=0.0, neg=0.0, dfg=0.0, dbg=0.0)
    counts = dict(bg=0, fg=0, neg=0)
    reach = radius - 1
    offsets = [(dy, dx) for dy in range(radius) for dx in range(-reach, radius)
               if dy * dy + dx * dx < radius * radius and (dy > 0 or dx > 0)]
    for y in range(height - reach):
        for x in range(reach, width - reach):
            for dy, dx in offsets:
                a, b = int(label[y, x]), int(label[y + dy, x + dx])
                if a == 255 or b == 255:
                    continue
                path = [prob[y + py, x + px]
                        for py in range(min(0, dy), max(0, dy) + 1)
                        for px in range(min(0, dx), max(0, dx) + 1)
                        if (dy * px - dx * py) ** 2 < dy * dy + dx * dx]
                aff = 1 - max(path)
                pair = disp[:, y, x] - disp[:, y + dy, x + dx]
                if a != b:
                    sums['neg'] += -math.log(1 + 1e-5 - aff)
                    counts['neg'] += 1
                elif a == 0:
                    sums['bg'] += -math.log(aff + 1e-5)
                    sums['dbg'] += pair.abs().sum().item()
                    counts['bg'] += 1
                else:
                    sums['fg'] += -math.log(aff + 1e-5)
                    sums['dfg'] += (pair - torch.tensor([dy, dx])).abs().sum().item()
                    counts['fg'] += 1
    eps = 1e-5
    pos = sums['bg'] / (counts['bg'] + eps) / 2 + sums['fg'] / (counts['fg'] + eps) / 2
    neg = sums['neg'] / (counts['neg'] + eps)
    dfg = sums['dfg'] / (2 * counts['fg'] + eps)
    dbg = sums['dbg'] / (2 * counts['bg'] + eps)
    return (pos + neg) / 2, (dfg + dbg) / 2, counts


def test_losses_equal_a_pair_by_pair_enumeration():
    torch.manual_seed(0)
    label = torch.zeros(7, 9, dtype=torch.long)
    label[1:5, 2:6] = 2
    label[5:, 6:] = 1
    label[0, 8] = 255
    label[3, 0] = 255
    edge_logits = torch.randn(1, 1, 7, 9)
    disp = torch.randn(1, 2, 7, 9)
    losses = IRNAffinityDisplacementLoss(radius=3)(edge_logits, disp, label[None])
    aff, dsp, counts = brute_force(edge_logits, disp, label, radius=3)
    assert min(counts.values()) > 0
    assert losses['loss_aff'].item() == pytest.approx(aff, rel=1e-5)
    assert losses['loss_disp'].item() == pytest.approx(dsp, rel=1e-5)


def test_loss_prefers_edges_on_the_boundary():
    label = torch.zeros(1, 8, 8, dtype=torch.long)
    label[:, :, 4:] = 1
    loss = IRNAffinityDisplacementLoss(radius=3)
    disp = torch.zeros(1, 2, 8, 8)
    on_boundary = torch.full((1, 1, 8, 8), -6.0)
    on_boundary[..., 3:5] = 6.0
    elsewhere = torch.full((1, 1, 8, 8), -6.0)
    elsewhere[..., 0:2] = 6.0
    assert loss(on_boundary, disp, label)['loss_aff'] < loss(elsewhere, disp, label)['loss_aff']
    with pytest.raises(ValueError, match='one grid'):
        loss(on_boundary, disp, label[:, :4])
