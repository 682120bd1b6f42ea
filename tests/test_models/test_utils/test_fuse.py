# Copyright (c) mmsfc contributors. All rights reserved.
import pytest
import torch
import torch.nn as nn

from mmsfc.models.utils.fuse import (
    BatchNormFolder,
    FoldedModuleCache,
    batch_norms_frozen,
    find_conv_bn_pairs,
    find_frozen_runs,
    fold_batch_norms,
    freeze_for_inference,
)


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

    def __init__(self, bypass: bool = False) -> None:
        super().__init__()
        # registered BN first: the pairing must follow the data flow
        self.bn = nn.BatchNorm2d(4)
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=True)
        self.head = nn.Sequential(nn.Conv2d(4, 5, 1, bias=False), nn.BatchNorm2d(5), nn.ReLU())
        self.bypass = bypass

    def forward(self, x):
        y = self.conv(x)
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
    assert sorted(find_conv_bn_pairs(block, x)) == [('conv', 'bn'), ('head.0', 'head.1')]
    folded = fold_batch_norms(block, x[:1])
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    with torch.no_grad():
        torch.testing.assert_close(folded(x), block(x), atol=1e-5, rtol=1e-5)
    for key, value in block.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert any(isinstance(m, nn.BatchNorm2d) for m in block.modules())


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


def test_cache_follows_weight_updates():
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


def test_batch_norm_folder_folds_only_frozen_pairs_and_keeps_gradients():
    torch.manual_seed(2)
    block = Block()
    randomize_batch_norms(block)
    block.eval()
    block.conv.requires_grad_(False)
    block.bn.requires_grad_(False)  # frozen pair; head.0 / head.1 stay trainable
    x = torch.randn(2, 3, 9, 11)
    block(x).square().sum().backward()
    expected = {n: p.grad.clone() for n, p in block.named_parameters() if p.requires_grad}
    block.zero_grad()
    folder = BatchNormFolder(trainable_ratio=None)
    with folder.folded(block, x) as folded:
        assert folded == 1
        assert block.bn(x) is x  # folded into conv
        assert block.head[1].__dict__.get("forward") is None  # trainable: as it is
        out = block(x)
    torch.testing.assert_close(out, block(x), atol=1e-5, rtol=1e-5)
    out.square().sum().backward()
    for name, grad in expected.items():
        torch.testing.assert_close(dict(block.named_parameters())[name].grad, grad,
                                   atol=1e-5, rtol=1e-5)
    assert all('forward' not in m.__dict__ for m in block.modules())
    block.train()  # BN with batch statistics: nothing folded
    with folder.folded(block, x) as folded:
        assert folded == 0


def test_freeze_for_inference_equals_module():
    torch.manual_seed(3)
    block = Block(bypass=True).eval()
    randomize_batch_norms(block)
    frozen = freeze_for_inference(block, torch.randn(1, 3, 8, 8))
    assert isinstance(frozen, torch.jit.ScriptModule)
    x = torch.randn(2, 3, 13, 10)  # another batch size and shape than traced
    with torch.no_grad():
        torch.testing.assert_close(frozen(x), block(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('ratio, folds', [(0.0, True), (1e6, False)])
def test_batch_norm_folder_folds_trainable_pairs_with_the_same_gradients(ratio, folds):
    torch.manual_seed(4)
    block = Block()
    randomize_batch_norms(block)
    block.eval()
    x = torch.randn(2, 3, 9, 11)
    block(x).square().sum().backward()
    expected = {n: p.grad.clone() for n, p in block.named_parameters()}
    block.zero_grad()
    folder = BatchNormFolder(trainable_ratio=ratio)
    bn_calls = []
    handle = nn.BatchNorm2d.forward
    with folder.folded(block, x) as patched:
        assert patched == 2
        nn.BatchNorm2d.forward = lambda self, inputs: bn_calls.append(1) or handle(self, inputs)
        try:
            out = block(x)
        finally:
            nn.BatchNorm2d.forward = handle
    assert len(bn_calls) == (0 if folds else 2)  # folded: no BN pass at all
    out.square().sum().backward()
    for name, grad in expected.items():
        torch.testing.assert_close(dict(block.named_parameters())[name].grad, grad,
                                   atol=1e-5, rtol=1e-4)


class SizeBranch(nn.Module):
    """Python control flow on the input size: a trace keeps the traced branch only."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.bn(self.conv(x))
        if x.shape[-1] > 7:
            y = y * 2
        return y


def test_freeze_refuses_a_trace_that_depends_on_the_input_size():
    torch.manual_seed(5)
    module = SizeBranch().eval()
    randomize_batch_norms(module)
    x = torch.randn(1, 3, 8, 8)
    with pytest.raises(RuntimeError, match='another input size'):
        freeze_for_inference(module, x)
    with pytest.warns(UserWarning, match='TorchScript freezing disabled'):
        folded = FoldedModuleCache().get(module, x, freeze=True)
    assert folded is not None and not isinstance(folded, torch.jit.ScriptModule)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    small = torch.randn(1, 3, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(folded(small), module(small), atol=1e-5, rtol=1e-5)


def test_freeze_refuses_a_trace_made_under_a_dispatch_mode():
    """The tracer records what runs below a TorchDispatchMode as constants."""
    from torch.utils.flop_counter import FlopCounterMode
    torch.manual_seed(5)
    module = Block().eval()
    randomize_batch_norms(module)
    x = torch.randn(1, 3, 8, 8)
    with FlopCounterMode(display=False), pytest.raises(RuntimeError,
                                                       match='does not read its input'):
        freeze_for_inference(module, x)
    frozen = freeze_for_inference(module, x)  # outside the mode, the same call succeeds
    assert isinstance(frozen, torch.jit.ScriptModule)


def test_nothing_folded_or_traced_without_batch_norms():
    """E.g. a ViT or a ConvNeXt: the module itself runs, in inference and training."""
    module = nn.Sequential(nn.Conv2d(3, 4, 3), nn.GroupNorm(2, 4), nn.ReLU()).eval()
    x = torch.randn(2, 3, 8, 8)
    assert find_conv_bn_pairs(module, x) == []
    assert FoldedModuleCache().get(module, x, freeze=True) is None
    with BatchNormFolder().folded(module, x) as patched:
        assert patched == 0
        assert all('forward' not in m.__dict__ for m in module.modules())


def plain_gradients(model, x):
    """The parameter gradients of ``model(x).square().sum()``, the model's own cleared."""
    model(x).square().sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    return grads


def assert_same_gradients_when_folded(model, folder, x, grads, tol):
    """Inside ``folder.folded`` (frozen copies): the parameter gradients ``grads`` of
    ``model(x).square().sum()``; and an input that needs a gradient runs the frozen
    part itself, so its gradient is that of the plain model."""
    with folder.folded(model, x, freeze_frozen_children=True):
        model(x).square().sum().backward()
    for name, grad in grads.items():
        torch.testing.assert_close(dict(model.named_parameters())[name].grad, grad,
                                   atol=tol, rtol=tol)
    x_grad = x.clone().requires_grad_()
    model(x_grad).sum().backward()
    expected_input_grad = x_grad.grad.clone()
    x_grad.grad = None
    with folder.folded(model, x, freeze_frozen_children=True):
        model(x_grad).sum().backward()
    torch.testing.assert_close(x_grad.grad, expected_input_grad, atol=1e-5, rtol=1e-5)


def test_batch_norm_folder_runs_frozen_children_as_their_frozen_copies():
    torch.manual_seed(3)
    frozen = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                           nn.Conv2d(6, 6, 1, bias=False), nn.BatchNorm2d(6))
    model = nn.Sequential(frozen, nn.ReLU(), nn.Conv2d(6, 4, 3, padding=1), nn.BatchNorm2d(4))
    randomize_batch_norms(model)
    model.eval()
    frozen.requires_grad_(False)
    x = torch.randn(2, 3, 12, 10)
    grads = plain_gradients(model, x)
    folder = BatchNormFolder(trainable_ratio=None)
    builds = []
    for size in ((12, 10), (8, 14)):  # the copy is built once, for any input size
        inputs = x if size == (12, 10) else torch.randn(2, 3, *size)
        with folder.folded(model, inputs, freeze_frozen_children=True) as patched:
            assert patched == 0  # the frozen pairs are in the frozen child; 2.3 trainable
            assert type(model[0]).__name__ == '_FrozenChildRunner'
            out = model(inputs)
        builds.append(folder._frozen_copies['0']._module)
        assert model[0] is frozen  # restored
        reference = model(inputs)
        torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-5)
    assert isinstance(builds[0], torch.jit.ScriptModule) and builds[0] is builds[1]
    assert_same_gradients_when_folded(model, folder, x, grads, tol=1e-4)
    # a child with a trainable parameter is not frozen
    frozen[3].weight.requires_grad_(True)
    with folder.folded(model, x, freeze_frozen_children=True):
        assert model[0] is frozen


class Stemmed(nn.Module):
    """A frozen stem (conv, BN, ReLU, max-pool as separate children) and a trainable head."""

    def __init__(self, stem_read_elsewhere=False, shared_relu=False, dropout=False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(6)
        self.relu = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(0.5) if dropout else nn.Identity()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.head = nn.Conv2d(6, 4, 3, padding=1)
        self.stem_read_elsewhere, self.shared_relu = stem_read_elsewhere, shared_relu
        for module in (self.conv1, self.bn1):
            module.requires_grad_(False)

    def forward(self, x):
        activated = self.drop(self.relu(self.bn1(self.conv1(x))))
        out = self.head(self.maxpool(activated))
        if self.shared_relu:
            out = self.relu(out)
        if self.stem_read_elsewhere:
            out = out + activated.mean()
        return out


def stemmed(**kwargs):
    torch.manual_seed(5)
    model = Stemmed(**kwargs)
    randomize_batch_norms(model)
    return model.eval()


def test_frozen_runs_are_the_chained_frozen_leaves():
    x = torch.randn(1, 3, 12, 10)
    assert find_frozen_runs(stemmed(), x) == [['conv1', 'bn1', 'relu', 'drop', 'maxpool']]
    # a dropout (random in training, gone in a frozen copy) ends a run
    assert find_frozen_runs(stemmed(dropout=True), x) == [['conv1', 'bn1', 'relu']]
    # a child called twice is no member; a conv alone is no run
    assert find_frozen_runs(stemmed(shared_relu=True), x) == [['conv1', 'bn1']]
    model = stemmed()
    model.bn1.weight.requires_grad_(True)
    assert find_frozen_runs(model, x) == []


def test_batch_norm_folder_runs_a_frozen_run_as_one_frozen_copy():
    model = stemmed()
    x = torch.randn(2, 3, 12, 10)
    grads = plain_gradients(model, x)
    folder = BatchNormFolder(trainable_ratio=None)
    children = dict(model.named_children())
    builds = []
    for inputs in (x, torch.randn(2, 3, 9, 15)):  # built once, for any input size
        with folder.folded(model, inputs, freeze_frozen_children=True) as patched:
            assert patched == 0  # the frozen pair is in the run
            assert [type(m).__name__ for m in model.children()] == [
                '_FrozenChildRunner', '_RunMember', '_RunMember', '_RunMember', '_RunMember',
                'Conv2d']
            out = model(inputs)
        assert dict(model.named_children()) == children  # restored
        builds.append(folder._frozen_copies['conv1']._module)
        torch.testing.assert_close(out, model(inputs), atol=1e-5, rtol=1e-5)
    assert folder._runs == [['conv1', 'bn1', 'relu', 'drop', 'maxpool']]
    assert isinstance(builds[0], torch.jit.ScriptModule) and builds[0] is builds[1]
    assert_same_gradients_when_folded(model, folder, x, grads, tol=1e-5)
    # a member made trainable later: the run runs as it is, and the member gets its gradient
    model.conv1.weight.requires_grad_(True)
    model.zero_grad()
    with folder.folded(model, x, freeze_frozen_children=True):
        assert model.conv1 is children['conv1'] and model.bn1 is children['bn1']
        model(x).sum().backward()
    assert model.conv1.weight.grad is not None and model.conv1.weight.grad.abs().sum() > 0


def test_a_run_whose_inside_is_read_elsewhere_is_not_run_as_a_copy():
    model = stemmed(stem_read_elsewhere=True)
    x = torch.randn(2, 3, 12, 10)
    assert find_frozen_runs(model, x[:1]) == [['conv1', 'bn1', 'relu', 'drop', 'maxpool']]
    folder = BatchNormFolder(trainable_ratio=None)
    with pytest.warns(UserWarning, match='not run as copies'):
        with folder.folded(model, x, freeze_frozen_children=True) as patched:
            assert patched == 1  # conv1 / bn1 folded in place instead
            out = model(x)
    assert folder._runs == [] and folder._frozen_copies == {}
    torch.testing.assert_close(out, model(x), atol=1e-5, rtol=1e-5)
