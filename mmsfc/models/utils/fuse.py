# Copyright (c) mmsfc contributors. All rights reserved.
"""Frozen BatchNorms folded into the preceding convolutions.

With frozen statistics a BatchNorm is a per-channel affine map, so a
convolution followed by it equals one convolution with scaled weights and a
bias: ``BN(conv(x)) = conv'(x)`` with ``W' = W * g``, ``b' = (b - mu) * g + beta``
and ``g = gamma / sqrt(var + eps)``. Folding saves one pass over every
activation.

- Inference: :func:`fold_batch_norms` / :class:`FoldedModuleCache` fold on a
  **copy** (optionally frozen by :func:`freeze_for_inference`): the module's
  own weights, buffers and checkpoints are never altered.
- Training: :class:`BatchNormFolder` patches the forwards of the pairs while
  inside its context, the module's own parameters used (gradients kept);
  on CPUs it can also run the frozen children (e.g. the frozen stages of a
  ResNet) as their cached, frozen copies, which never change.
"""
import copy
import warnings
from contextlib import contextmanager
from functools import partial
from typing import Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor
from torch.nn.utils.fusion import fuse_conv_bn_weights

_BN = nn.modules.batchnorm._BatchNorm


def batch_norms_frozen(module: nn.Module) -> bool:
    """Whether every BatchNorm of ``module`` normalises with its running statistics.

    True when each one is in eval mode (or has no batch statistics to use)
    and holds running statistics, i.e. when folding is exact.
    """
    for bn in module.modules():
        if isinstance(bn, _BN):
            if bn.running_mean is None or bn.running_var is None:
                return False
            if bn.training:
                return False
    return True


def _flat_tensors(outputs) -> List[Tensor]:
    if isinstance(outputs, Tensor):
        return [outputs]
    if isinstance(outputs, (list, tuple)):
        return [t for out in outputs for t in _flat_tensors(out)]
    if isinstance(outputs, dict):
        return [t for out in outputs.values() for t in _flat_tensors(out)]
    return []


def _plain_conv(mod: nn.Module) -> bool:
    """An ``nn.Conv2d`` (or subclass) whose forward is the plain convolution."""
    return (isinstance(mod, nn.Conv2d) and type(mod).forward is nn.Conv2d.forward
            and type(mod)._conv_forward is nn.Conv2d._conv_forward)


def find_conv_bn_pairs(module: nn.Module, example: Tensor) -> List[Tuple[str, str]]:
    """Conv / BatchNorm pairs whose BN reads exactly the conv's output.

    Found by running ``module`` once on ``example`` with hooks (so the pairing
    follows the data flow, not the order of registration): a pair is a
    ``Conv2d`` and a BatchNorm that are each called once, the BN's input
    being the very tensor the conv returned.

    Args:
        module (nn.Module): E.g. a backbone, BatchNorms frozen.
        example (Tensor): An input of ``module``, e.g. ``(1, 3, H, W)``.

    Returns:
        list[tuple[str, str]]: ``(conv_name, bn_name)`` qualified names.
    """
    names = {m: name for name, m in module.named_modules()}
    calls: Dict[str, int] = {}
    conv_outputs: Dict[int, Tuple[str, Tensor]] = {}
    bn_inputs: Dict[str, Tensor] = {}

    def conv_hook(mod, args, output):
        name = names[mod]
        calls[name] = calls.get(name, 0) + 1
        conv_outputs[id(output)] = (name, output)  # the tensor is kept: ids stay unique

    def bn_hook(mod, args):
        name = names[mod]
        calls[name] = calls.get(name, 0) + 1
        bn_inputs[name] = args[0]

    handles = []
    for mod in module.modules():
        if _plain_conv(mod):
            handles.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, _BN):
            handles.append(mod.register_forward_pre_hook(bn_hook))
    _run_hooked(module, example, handles)
    pairs = []
    for bn_name, tensor in bn_inputs.items():
        source = conv_outputs.get(id(tensor))
        if source is None or source[1] is not tensor:
            continue
        conv_name = source[0]
        if calls[conv_name] == 1 and calls[bn_name] == 1:
            pairs.append((conv_name, bn_name))
    return pairs


def _frozen_leaf(module: nn.Module) -> bool:
    """A module without submodules and without trainable parameters (e.g. a ReLU).

    Not a dropout: a frozen copy runs in eval mode.
    """
    return (next(module.children(), None) is None
            and not isinstance(module, nn.modules.dropout._DropoutNd)
            and not any(p.requires_grad for p in module.parameters()))


def find_frozen_runs(module: nn.Module, example: Tensor) -> List[List[str]]:
    """Runs of direct children that can run as one frozen copy, e.g. a ResNet stem.

    A run is two or more direct children of ``module``, in the order they are
    called on ``example``, each a leaf without trainable parameters called
    once, each reading the very tensor the one before it returned, with a
    ``Conv2d`` and a BatchNorm among them (mmseg's ResNet: ``conv1``,
    ``bn1``, ``relu``, ``maxpool``). Found by running ``module`` with hooks,
    like :func:`find_conv_bn_pairs`; whether nothing else reads the tensors
    inside a run is left to the caller to check on the outputs.

    Args:
        module (nn.Module): E.g. a backbone, BatchNorms frozen.
        example (Tensor): An input of ``module``, e.g. ``(1, 3, H, W)``.

    Returns:
        list[list[str]]: The children's names of each run, in calling order.
    """
    children = dict(module.named_children())
    calls: List[Tuple[str, object, object]] = []  # the tensors kept: ids stay unique
    counts: Dict[str, int] = {}

    def recorder(name: str):
        def record(mod, args, output):
            counts[name] = counts.get(name, 0) + 1
            calls.append((name, args[0] if len(args) == 1 else None, output))
        return record

    _run_hooked(module, example,
                [child.register_forward_hook(recorder(name)) for name, child in children.items()])
    runs: List[List[str]] = []
    current: List[Tuple[str, object, object]] = []

    def close(run: List[Tuple[str, object, object]]) -> None:
        if len(run) > 1 and _has_conv_and_bn([children[name] for name, _, _ in run]):
            runs.append([name for name, _, _ in run])

    for call in calls:
        name, inputs, output = call
        eligible = (counts[name] == 1 and _frozen_leaf(children[name])
                    and isinstance(inputs, Tensor) and isinstance(output, Tensor))
        if eligible and current and inputs is current[-1][2]:
            current.append(call)
            continue
        close(current)
        current = [call] if eligible else []
    close(current)
    return runs


def _run_hooked(module: nn.Module, example: Tensor, handles: list) -> None:
    """Run ``module`` once on ``example`` (no gradients, float32), then remove the hooks."""
    try:
        with torch.no_grad(), _float32(example):
            module(example)
    finally:
        for handle in handles:
            handle.remove()


def _float32(example: Tensor):
    """No autocast: the checks compare in full precision."""
    return torch.autocast(example.device.type, enabled=False)


def _set_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition('.')
    parent = root.get_submodule(parent_name) if parent_name else root
    parent._modules[child] = new


def fold_batch_norms(module: nn.Module, example: Tensor, rtol: float = 1e-3,
                     pairs: Optional[List[Tuple[str, str]]] = None) -> nn.Module:
    """A copy of ``module`` in which every BatchNorm that follows a conv is folded.

    The copy is checked against ``module`` on ``example``; each output must
    agree to ``rtol`` of its largest magnitude (a fold is exact up to float
    rounding, about 1e-6; a wrong pairing gives differences of the order of
    the features), otherwise a ``RuntimeError`` is raised.

    Args:
        module (nn.Module): Module whose BatchNorms are frozen (eval mode,
            running statistics); it is not modified.
        example (Tensor): An input for the pairing and the check, e.g. one
            image ``(1, 3, H, W)``.
        rtol (float): Tolerance of the check, relative to each output's max.
        pairs (list[tuple[str, str]], optional): The pairs to fold, as
            :func:`find_conv_bn_pairs` returns them; found on ``example``
            when None.

    Returns:
        nn.Module: The folded copy, in eval mode, without gradients.
    """
    if not batch_norms_frozen(module):
        raise ValueError('fold_batch_norms needs every BatchNorm in eval mode with '
                         'running statistics (frozen); folding a training BN is wrong')
    if pairs is None:
        pairs = find_conv_bn_pairs(module, example)
    fused = copy.deepcopy(module)
    fused.eval()  # (some backbones' train() returns None)
    with torch.no_grad():
        for conv_name, bn_name in pairs:
            conv = fused.get_submodule(conv_name)
            bn = fused.get_submodule(bn_name)
            weight, bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean,
                                                bn.running_var, bn.eps, bn.weight, bn.bias)
            conv.weight, conv.bias = weight, bias
            _set_submodule(fused, bn_name, nn.Identity())
        for param in fused.parameters():
            param.requires_grad_(False)
    _check_same_outputs(module, fused, example, rtol,
                        'folding the BatchNorms changed the outputs: the module uses a '
                        'conv output other than through its BatchNorm')
    return fused


def _same_outputs(reference: List[Tensor], outputs: List[Tensor], rtol: float = 1e-3) -> bool:
    """Same shapes, and each output within ``rtol`` of its reference's largest magnitude."""
    return len(reference) == len(outputs) and all(
        ref.shape == out.shape
        and (ref - out).abs().max().item() <= rtol * ref.abs().max().item() + 1e-6
        for ref, out in zip(reference, outputs))


def _check_same_outputs(module: nn.Module, other: nn.Module, example: Tensor, rtol: float,
                        message: str) -> None:
    """Raise ``RuntimeError(message)`` unless both give the same outputs on ``example``."""
    with torch.no_grad(), _float32(example):
        reference = _flat_tensors(module(example))
        outputs = _flat_tensors(other(example))
    if len(reference) != len(outputs):
        raise RuntimeError(message + ' (a different output structure)')
    if not _same_outputs(reference, outputs, rtol):
        raise RuntimeError(message)


def freeze_for_inference(module: nn.Module, example: Tensor, rtol: float = 1e-3) -> nn.Module:
    """TorchScript copy of ``module`` optimised for inference, checked on ``example``.

    ``torch.jit.trace``, ``torch.jit.freeze`` and
    ``torch.jit.optimize_for_inference``: BatchNorm folding and, on CPUs,
    oneDNN convolutions with pre-packed weights, the activations kept in
    oneDNN's blocked layout between them (ReLU and additions stay separate
    operations). The
    module must have no data-dependent control flow (a ResNet qualifies): a
    trace replays the operations of ``example``'s size at every size, so the
    outputs are compared with ``module``'s like :func:`fold_batch_norms` on
    ``example`` and on a crop of it to 3/4 of its height and width. A trace
    that does not read its input (made under a ``TorchDispatchMode``, whose
    ops the tracer records as constants) is refused first.

    Args:
        module (nn.Module): Module in eval mode (not modified).
        example (Tensor): Input used to trace and check, e.g. ``(1, 3, H, W)``.
        rtol (float): Tolerance of the check, relative to each output's max.

    Returns:
        nn.Module: The frozen ``torch.jit.ScriptModule``.
    """
    with torch.no_grad(), _float32(example), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        module_copy = copy.deepcopy(module)
        module_copy.eval()
        frozen = torch.jit.freeze(torch.jit.trace(module_copy, example, check_trace=False))
        if not all(value.uses() for value in list(frozen.graph.inputs())[1:]):  # [0]: self
            raise RuntimeError('the trace does not read its input: traced under a dispatch '
                               'mode (e.g. FlopCounterMode), whose ops the tracer does not see')
        frozen = torch.jit.optimize_for_inference(frozen)
    message = 'the TorchScript-frozen module changed the outputs'
    _check_same_outputs(module, frozen, example, rtol, message)
    if example.dim() == 4 and min(example.shape[2:]) >= 4:
        height, width = example.shape[2:]
        crop = example[:, :, :height - height // 4, :width - width // 4]
        _check_same_outputs(module, frozen, crop, rtol, message + ' at another input size')
    return frozen


class FoldedModuleCache:
    """A folded (optionally TorchScript-frozen) copy of a module, kept while its weights are.

    The copy is rebuilt whenever a parameter or buffer of the module changes
    (in-place update, ``load_state_dict``, ``to(device)``): the key is each
    tensor's storage, version counter, device and dtype. :meth:`get` returns
    None when the module's BatchNorms are not frozen, when it has no conv /
    BatchNorm pair (nothing to fold, e.g. a ViT or a ConvNeXt) or when the
    folded copy fails its check (with a warning); then the module itself
    must be used.
    """

    def __init__(self) -> None:
        self._key: Optional[tuple] = None
        self._module: Optional[nn.Module] = None

    def __getstate__(self) -> dict:
        # transient (a TorchScript copy does not pickle): copies start empty
        return dict(_key=None, _module=None)

    def __deepcopy__(self, memo: dict) -> 'FoldedModuleCache':
        return FoldedModuleCache()

    @staticmethod
    def _state_key(module: nn.Module, freeze: bool) -> tuple:
        tensors = list(module.parameters()) + list(module.buffers())
        return (freeze, ) + tuple(
            (t.data_ptr(), t._version, t.device, t.dtype) for t in tensors)

    def get(self, module: nn.Module, example: Tensor,
            freeze: bool = False) -> Optional[nn.Module]:
        """The folded copy of ``module`` (built on ``example[:1]`` if stale).

        Args:
            module (nn.Module): The module to fold (not modified).
            example (Tensor): A batch of its inputs ``(N, ...)``.
            freeze (bool): Further :func:`freeze_for_inference` the folded copy
                (kept folded if that fails, with a warning).
        """
        if not batch_norms_frozen(module):
            return None
        key = self._state_key(module, freeze)
        if key != self._key:
            self._module = None  # free the stale copy first
            pairs = find_conv_bn_pairs(module, example[:1])
            fused = None
            if pairs:
                try:
                    fused = fold_batch_norms(module, example[:1], pairs=pairs)
                except RuntimeError as error:
                    warnings.warn(f'BatchNorm folding disabled for {type(module).__name__}: '
                                  f'{error}', stacklevel=2)
            if fused is not None and freeze:
                try:
                    fused = freeze_for_inference(fused, example[:1])
                except Exception as error:  # tracing fails in many ways: keep the fold
                    warnings.warn(f'TorchScript freezing disabled for {type(module).__name__}: '
                                  f'{error}', stacklevel=2)
            self._module, self._key = fused, key
        return self._module


def _identity(inputs: Tensor) -> Tensor:
    return inputs


def _conv_forward(conv: nn.Conv2d, weight: Tensor, bias: Tensor, inputs: Tensor) -> Tensor:
    return conv._conv_forward(inputs, weight, bias)


def _checkpointed(module: nn.Module) -> bool:
    """Whether a submodule recomputes its forward in backward (``with_cp``)."""
    return any(getattr(m, 'with_cp', False) for m in module.modules())


class _TrainablePair:
    """Patched forwards of a conv / BN pair with trainable parameters.

    Each call decides: folded when the conv's output pixels (``N * h * w``)
    reach ``ratio`` times its weights per output channel (``C_in * k * k``),
    i.e. when the BN input the fold saves outweighs the scaled weight it
    adds; otherwise the conv and the BN run as they are.
    """

    def __init__(self, conv: nn.Conv2d, bn: nn.Module, ratio: float) -> None:
        self.conv, self.bn, self.ratio = conv, bn, ratio
        self.weights_per_channel = conv.weight[0].numel()
        self.folded = False

    def conv_forward(self, inputs: Tensor) -> Tensor:
        conv, bn = self.conv, self.bn
        pixels = inputs.shape[0]
        for size, stride in zip(inputs.shape[2:], conv.stride):
            pixels *= -(-size // stride)
        self.folded = pixels >= self.ratio * self.weights_per_channel
        if not self.folded:
            return conv._conv_forward(inputs, conv.weight, conv.bias)
        scale = torch.rsqrt(bn.running_var + bn.eps)
        if bn.weight is not None:
            scale = bn.weight * scale
        bias = -bn.running_mean * scale
        if conv.bias is not None:
            bias = bias + conv.bias * scale
        if bn.bias is not None:
            bias = bias + bn.bias
        weight = conv.weight * scale.view(-1, *([1] * (conv.weight.dim() - 1)))
        return conv._conv_forward(inputs, weight, bias)

    def bn_forward(self, inputs: Tensor) -> Tensor:
        return inputs if self.folded else type(self.bn).forward(self.bn, inputs)


def _has_conv_and_bn(modules: List[nn.Module]) -> bool:
    """Whether ``modules`` hold a plain conv and a BatchNorm (pairs to fold)."""
    return (any(_plain_conv(m) for m in modules)
            and any(isinstance(m, _BN) for m in modules))


def _frozen_child(child: nn.Module) -> bool:
    """A child without trainable parameters, with convs and BNs to fold.

    (Its BatchNorms are frozen and nothing in it is checkpointed: :meth:`BatchNormFolder.folded`
    checks both for the whole module first.)
    """
    params = list(child.parameters())
    return (bool(params) and not any(p.requires_grad for p in params)
            and _has_conv_and_bn(list(child.modules())))


def _cpu_autocast_enabled() -> bool:
    try:
        return torch.is_autocast_enabled('cpu')
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled()


class _FrozenChildRunner(nn.Module):
    """Stands in for a frozen child, or a frozen run, in :meth:`BatchNormFolder.folded`.

    Runs the child's folded, TorchScript-frozen copy (from ``cache``) when
    nothing can need a gradient through it (one tensor input that does not
    require one; the child has no trainable parameters) and no autocast is on;
    otherwise the child itself. The copy is built on the first input and kept
    while the child's weights are unchanged (see :class:`FoldedModuleCache`).
    For a run, ``child`` is an ``nn.Sequential`` of its members, and the
    other members stand aside (:class:`_RunMember`).
    """

    def __init__(self, child: nn.Module, cache: FoldedModuleCache) -> None:
        super().__init__()
        self.child = child
        self.cache = cache

    def forward(self, *args, **kwargs):
        inputs = args[0] if len(args) == 1 and not kwargs else None
        if (not isinstance(inputs, Tensor) or inputs.device.type != 'cpu'
                or (torch.is_grad_enabled() and inputs.requires_grad)
                or _cpu_autocast_enabled()):
            return self.child(*args, **kwargs)
        frozen = self.cache.get(self.child, inputs, freeze=True)
        return self.child(inputs) if frozen is None else frozen(inputs)


@contextmanager
def _children_replaced(module: nn.Module, stand_ins: Dict[str, nn.Module]) -> Iterator[None]:
    """Context in which the named direct children of ``module`` are ``stand_ins``."""
    replaced = {name: module._modules[name] for name in stand_ins}
    module._modules.update(stand_ins)
    try:
        yield
    finally:
        module._modules.update(replaced)


class _RunMember(nn.Module):
    """Stands in for a later member of a frozen run: the run's first member did its work."""

    def forward(self, inputs: Tensor) -> Tensor:
        return inputs


class BatchNormFolder:
    """Runs a module with its conv / frozen-BatchNorm pairs folded, for training.

    Inside :meth:`folded`, each conv / BN pair of the module (BN in eval mode)
    runs as one convolution with the weight ``W * g`` and the bias
    ``(b - mu) * g + beta``, ``g = gamma / sqrt(var + eps)``:

    - pairs without trainable parameters (the frozen stages of the SFC
      ResNet): always, with the folded weights computed once per entry
      without gradients;
    - pairs with trainable parameters: ``W * g`` and the bias are computed in
      the autograd graph, so the conv weight and the BN affine parameters get
      the gradients they get unfolded (equal to float rounding), and no BN
      input is kept for backward; but the scaled weight is, and it costs
      passes over the weights, so a pair is folded only when its output
      pixels reach ``trainable_ratio`` times its weights per output channel
      (large batches and crops; None never folds them).

    The pairs are found once by :func:`find_conv_bn_pairs` and checked on an
    example. Nothing is folded when a BN of the module is in training mode or
    a submodule recomputes its forward in backward (``with_cp``).

    With ``freeze_frozen_children`` (CPU inputs), each direct child of the
    module that has parameters, none of them trainable, and conv / BN pairs
    (the frozen stages ``layer1``, ``layer2`` of the SFC ResNet) runs as a
    folded copy frozen by :func:`freeze_for_inference` (oneDNN convolutions
    with pre-packed weights, the activations in oneDNN's layout inside the
    child), built once and kept across steps while its weights are unchanged;
    the pairs inside such a child are then not patched. So does each run of
    frozen leaf children found by :func:`find_frozen_runs` (the stem ``conv1``,
    ``bn1``, ``relu``, ``maxpool``): its first member runs the whole run's
    copy and the others pass their input on; the runs are checked once on the
    module's outputs, and dropped with a warning if these change. A call whose
    input requires a gradient, or under autocast, runs the child (the run)
    itself.

    Args:
        trainable_ratio (float, optional): See above. Defaults to 2.
    """

    def __init__(self, trainable_ratio: Optional[float] = 2.0) -> None:
        self._pairs: Optional[List[Tuple[nn.Module, nn.Module]]] = None
        self.trainable_ratio = trainable_ratio
        self._frozen_copies: Dict[str, FoldedModuleCache] = {}
        self._runs: Optional[List[List[str]]] = None

    @contextmanager
    def _patched(self, pairs: List[Tuple[nn.Module, nn.Module]]) -> Iterator[int]:
        patched = []
        try:
            with torch.no_grad():
                for conv, bn in pairs:
                    if bn.training:
                        continue
                    if any(p.requires_grad for p in (*conv.parameters(), *bn.parameters())):
                        if self.trainable_ratio is None:
                            continue
                        pair = _TrainablePair(conv, bn, self.trainable_ratio)
                        conv.forward, bn.forward = pair.conv_forward, pair.bn_forward
                    else:
                        weight, bias = fuse_conv_bn_weights(
                            conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps,
                            bn.weight, bn.bias)
                        conv.forward = partial(_conv_forward, conv, weight.detach(),
                                               bias.detach())
                        bn.forward = _identity
                    patched.append((conv, bn))
            yield len(patched)
        finally:
            for conv, bn in patched:
                conv.__dict__.pop('forward', None)
                bn.__dict__.pop('forward', None)

    def _find_pairs(self, module: nn.Module,
                    example: Tensor) -> List[Tuple[nn.Module, nn.Module]]:
        pairs = [(module.get_submodule(conv), module.get_submodule(bn))
                 for conv, bn in find_conv_bn_pairs(module, example)]
        if not pairs:  # nothing to fold (e.g. a ViT or a ConvNeXt)
            return []
        ratio = self.trainable_ratio
        if ratio is not None:
            self.trainable_ratio = 0.0  # check every pair folded
        try:
            with torch.no_grad(), _float32(example):
                reference = _flat_tensors(module(example))
                with self._patched(pairs):
                    outputs = _flat_tensors(module(example))
        finally:
            self.trainable_ratio = ratio
        if not _same_outputs(reference, outputs):
            warnings.warn(f'BatchNorm folding disabled for {type(module).__name__}: the '
                          'module uses a conv output other than through its BatchNorm',
                          stacklevel=3)
            return []
        return pairs

    @contextmanager
    def folded(self, module: nn.Module, example: Tensor,
               freeze_frozen_children: bool = False) -> Iterator[int]:
        """Context in which ``module`` runs with its frozen pairs folded.

        Args:
            module (nn.Module): E.g. the backbone.
            example (Tensor): An input batch, used (its first item) the first
                time to find and check the pairs.
            freeze_frozen_children (bool): On CPUs, run the frozen children
                as their frozen copies (see the class docstring).

        Yields:
            int: The number of patched pairs (trainable ones fold per call).
        """
        if not batch_norms_frozen(module) or _checkpointed(module):
            yield 0  # (a training BN would also update its statistics in the check)
            return
        if self._pairs is None:
            self._pairs = self._find_pairs(module, example[:1])
        frozen = freeze_frozen_children and example.device.type == 'cpu'
        if frozen and self._runs is None:
            self._runs = self._find_runs(module, example[:1])
        stand_ins = self._frozen_stand_ins(module) if frozen else {}
        inside = {m for name in stand_ins for m in module.get_submodule(name).modules()}
        with _children_replaced(module, stand_ins), self._patched(
                [pair for pair in self._pairs
                 if pair[0] not in inside and pair[1] not in inside]) as count:
            yield count

    def _frozen_stand_ins(self, module: nn.Module) -> Dict[str, nn.Module]:
        """What replaces the frozen children and the members of the frozen runs."""
        stand_ins = self._run_stand_ins(module, self._runs)
        for name, child in module.named_children():
            if _frozen_child(child):
                cache = self._frozen_copies.setdefault(name, FoldedModuleCache())
                stand_ins[name] = _FrozenChildRunner(child, cache)
        return stand_ins

    def _run_stand_ins(self, module: nn.Module, runs: List[List[str]]) -> Dict[str, nn.Module]:
        stand_ins: Dict[str, nn.Module] = {}
        for run in runs:
            members = nn.Sequential(*(module.get_submodule(name) for name in run))
            if not all(_frozen_leaf(member) for member in members):
                continue  # a member was made trainable since: the run runs as it is
            # (the cache keys the copy on the members' weights, not on this Sequential)
            cache = self._frozen_copies.setdefault(run[0], FoldedModuleCache())
            stand_ins[run[0]] = _FrozenChildRunner(members, cache)
            stand_ins.update((name, _RunMember()) for name in run[1:])
        return stand_ins

    def _find_runs(self, module: nn.Module, example: Tensor) -> List[List[str]]:
        """:func:`find_frozen_runs`, kept only if running them as copies leaves the outputs."""
        runs = find_frozen_runs(module, example)
        if not runs:
            return []
        with torch.no_grad(), _float32(example):
            reference = _flat_tensors(module(example))
            with _children_replaced(module, self._run_stand_ins(module, runs)):
                outputs = _flat_tensors(module(example))
        if not _same_outputs(reference, outputs):
            warnings.warn(f'Frozen runs {runs} of {type(module).__name__} are not run as copies: '
                          'the outputs changed (a tensor inside a run is read elsewhere)',
                          stacklevel=3)
            for run in runs:
                self._frozen_copies.pop(run[0], None)
            return []
        return runs
