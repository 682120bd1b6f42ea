# Copyright (c) mmsfc contributors. All rights reserved.
import copy
import pickle

import pytest
import torch
import torch.nn as nn

from mmsfc.models.utils.fuse import FoldedModuleCache, batch_norms_frozen, fold_batch_norms


def randomize_batch_norms(module: nn.Module, seed: int = 0) -> None:
    """Non-trivial running statistics and affine parameters for every BN."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in module.modules():
            if isinstance(bn, nn.modules.batchnorm._BatchNorm):
                n = bn.num_features
                bn.running_mean.copy_(torch.randn(n, generator=gen))
                bn.running_var.copy_(torch.rand(n, generator=gen) * 2 + 0.1)
                bn.weight.copy_(torch.randn(n, generator=gen))
                bn.bias.copy_(torch.randn(n, generator=gen))


class Block(nn.Module):
    """A conv / BN pair in registration order, one inside a Sequential, and a BN
    registered before its conv (left as it is)."""

    def __init__(self, bypass: bool = False) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm2d(3)
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=True)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Sequential(nn.Conv2d(4, 5, 1, bias=False), nn.BatchNorm2d(5), nn.ReLU())
        self.bypass = bypass

    def forward(self, x):
        y = self.conv(self.bn0(x))
        out = self.head(torch.relu(self.bn(y)))
        if self.bypass:  # the conv output is also used without its BN
            out = out + y.mean(dim=1, keepdim=True)
        return out


def test_fold_equals_module_and_leaves_it_untouched():
    torch.manual_seed(0)
    block = Block()
    randomize_batch_norms(block)
    block.eval()
    state = {k: v.clone() for k, v in block.state_dict().items()}
    x = torch.randn(2, 3, 9, 11)
    folded = fold_batch_norms(block, x[:1])
    assert isinstance(folded.bn, nn.Identity) and isinstance(folded.head[1], nn.Identity)
    assert isinstance(folded.bn0, nn.BatchNorm2d)  # no conv before it
    assert not any(p.requires_grad for p in folded.parameters())
    assert not any('forward' in m.__dict__ for m in folded.modules())
    with torch.no_grad():
        torch.testing.assert_close(folded(x), block(x), atol=1e-5, rtol=1e-5)
    for key, value in block.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert isinstance(block.bn, nn.BatchNorm2d)


def test_fold_refuses_training_bn_and_a_conv_output_used_elsewhere():
    block = Block()
    randomize_batch_norms(block)
    block.train()
    assert not batch_norms_frozen(block)
    with pytest.raises(ValueError, match='eval mode'):
        fold_batch_norms(block, torch.randn(1, 3, 8, 8))
    assert FoldedModuleCache().get(block, torch.randn(1, 3, 8, 8)) is None

    bypass = Block(bypass=True).eval()
    randomize_batch_norms(bypass)
    with pytest.raises(RuntimeError, match='changed the outputs'):
        fold_batch_norms(bypass, torch.randn(1, 3, 8, 8))
    with pytest.warns(UserWarning, match='folding disabled'):
        assert FoldedModuleCache().get(bypass, torch.randn(1, 3, 8, 8)) is None


def test_cache_follows_weight_updates_and_is_transient():
    torch.manual_seed(1)
    block = Block().eval()
    randomize_batch_norms(block)
    cache = FoldedModuleCache()
    x = torch.randn(1, 3, 8, 8)
    first = cache.get(block, x)
    assert cache.get(block, x) is first  # unchanged weights: same copy
    with torch.no_grad():
        block.head[1].running_var.mul_(3)  # in place, as an optimiser or load_state_dict
        block.conv.weight.add_(0.5)
    second = cache.get(block, x)
    assert second is not first
    with torch.no_grad():
        torch.testing.assert_close(second(x), block(x), atol=1e-5, rtol=1e-5)
        assert (first(x) - block(x)).abs().max() > 1e-2
    assert copy.deepcopy(cache)._module is None
    assert pickle.loads(pickle.dumps(cache))._module is None


def test_nothing_folded_without_batch_norms():
    """E.g. a ViT or a ConvNeXt: the module itself runs."""
    module = nn.Sequential(nn.Conv2d(3, 4, 3), nn.GroupNorm(2, 4), nn.ReLU()).eval()
    assert FoldedModuleCache().get(module, torch.randn(2, 3, 8, 8)) is None
