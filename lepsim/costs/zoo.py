"""The built-in model zoo that ``lepsim profile`` runs (no downloads, synthetic data).

Three small PyTorch models, each registered under a short name:

=================  =====================================================  ==========  ====================
name               model                                                   parameters  one sample
=================  =====================================================  ==========  ====================
``mnist-mlp``      784-512-256-128-10 MLP with ReLU (the MNIST classic)       567,434  784 floats (28x28)
``resnet-small``   CIFAR ResNet-20 layout: 3 stages x 3 basic blocks          272,474  3x32x32 image
                   (16/32/64 channels, batch norm, 1x1 projection
                   shortcuts where the shape changes), 10 classes
``gpt-small``      GPT-style decoder: 4 layers, d_model 256, 4 heads,       3,716,608  128 tokens
                   MLP 1024, vocabulary 1024, context 128, pre-norm,
                   causal attention, untied output head
=================  =====================================================  ==========  ====================

Everything here imports :mod:`torch` lazily, inside the functions that need it, so the
zoo's metadata (:data:`ZOO`, :func:`get`, :func:`names`) is available without PyTorch.

Randomness: inputs come from a caller-supplied local :class:`torch.Generator`; model
weights are initialised by :func:`ZooModel.build` under ``torch.random.fork_rng`` with a
seed, so the global torch RNG state is restored afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


class UnknownModel(KeyError):
    """No zoo model of that name."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(name)

    def __str__(self) -> str:
        return f"unknown zoo model {self.name!r}; known: {', '.join(names())}"


@dataclass(frozen=True)
class ZooModel:
    """One zoo entry: how to build the model, feed it, and score it."""

    name: str
    description: str
    params: int                              # documented parameter count (tests check it)
    sample: str                              # what one sample is, in words
    default_batch_sizes: tuple[int, ...]
    tokens_per_sample: int | None            # sequence length for token models, else None
    _factory: Callable[[], Any]
    _batch: Callable[[int, Any], tuple[Any, Any]]
    _optimizer: Callable[[Any], Any]

    def build(self, seed: int = 0):
        """A fresh ``torch.nn.Module`` (on CPU, float32), weights drawn from ``seed``.

        The global torch RNG is forked, seeded and restored, so nothing outside changes.
        """
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self._factory()

    def make_batch(self, batch_size: int, generator) -> tuple[Any, Any]:
        """Synthetic ``(inputs, targets)`` on CPU drawn from ``generator`` (a torch.Generator)."""
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        return self._batch(int(batch_size), generator)

    def loss(self, outputs, targets):
        """Cross-entropy of the logits against the targets (token-wise for gpt-small)."""
        import torch.nn.functional as F

        if outputs.dim() == 3:  # (batch, seq, vocab)
            return F.cross_entropy(outputs.reshape(-1, outputs.shape[-1]), targets.reshape(-1))
        return F.cross_entropy(outputs, targets)

    def make_optimizer(self, parameters):
        """The optimizer a training step uses (SGD with momentum, or AdamW for gpt-small)."""
        return self._optimizer(parameters)


# --- mnist-mlp -----------------------------------------------------------------------------

MLP_LAYERS: tuple[int, ...] = (784, 512, 256, 128, 10)


def _mlp():
    import torch.nn as nn

    layers: list = []
    for i, (a, b) in enumerate(zip(MLP_LAYERS, MLP_LAYERS[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(MLP_LAYERS) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _mlp_batch(b: int, g):
    import torch

    x = torch.randn(b, MLP_LAYERS[0], generator=g)
    y = torch.randint(0, MLP_LAYERS[-1], (b,), generator=g)
    return x, y


# --- resnet-small ----------------------------------------------------------------------------

def _resnet():
    import torch.nn as nn
    import torch.nn.functional as F

    class BasicBlock(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.shortcut = nn.Identity()
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
                )

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return F.relu(out + self.shortcut(x))

    class ResNetSmall(nn.Module):
        def __init__(self, blocks_per_stage: int = 3, widths=(16, 32, 64), classes: int = 10):
            super().__init__()
            self.stem = nn.Sequential(
                nn.Conv2d(3, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
            )
            blocks: list = []
            cin = widths[0]
            for s, w in enumerate(widths):
                for i in range(blocks_per_stage):
                    blocks.append(BasicBlock(cin, w, 2 if (i == 0 and s > 0) else 1))
                    cin = w
            self.blocks = nn.Sequential(*blocks)
            self.head = nn.Linear(cin, classes)

        def forward(self, x):
            x = self.blocks(self.stem(x))
            x = F.adaptive_avg_pool2d(x, 1).flatten(1)
            return self.head(x)

    return ResNetSmall()


def _resnet_batch(b: int, g):
    import torch

    return torch.randn(b, 3, 32, 32, generator=g), torch.randint(0, 10, (b,), generator=g)


# --- gpt-small ---------------------------------------------------------------------------------

GPT_VOCAB = 1024
GPT_CONTEXT = 128
GPT_D_MODEL = 256
GPT_HEADS = 4
GPT_LAYERS = 4
GPT_MLP = 1024


def _gpt():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Block(nn.Module):
        def __init__(self, d: int, heads: int, hidden: int):
            super().__init__()
            self.heads = heads
            self.ln1 = nn.LayerNorm(d)
            self.qkv = nn.Linear(d, 3 * d)
            self.proj = nn.Linear(d, d)
            self.ln2 = nn.LayerNorm(d)
            self.fc1 = nn.Linear(d, hidden)
            self.fc2 = nn.Linear(hidden, d)

        def forward(self, x):
            b, t, d = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
            q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
            return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))

    class GPTSmall(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(GPT_VOCAB, GPT_D_MODEL)
            self.pos = nn.Embedding(GPT_CONTEXT, GPT_D_MODEL)
            self.blocks = nn.Sequential(*(Block(GPT_D_MODEL, GPT_HEADS, GPT_MLP) for _ in range(GPT_LAYERS)))
            self.ln_f = nn.LayerNorm(GPT_D_MODEL)
            self.head = nn.Linear(GPT_D_MODEL, GPT_VOCAB, bias=False)

        def forward(self, idx):
            t = idx.shape[1]
            pos = torch.arange(t, device=idx.device)
            x = self.tok(idx) + self.pos(pos)
            return self.head(self.ln_f(self.blocks(x)))

    return GPTSmall()


def _gpt_batch(b: int, g):
    import torch

    tokens = torch.randint(0, GPT_VOCAB, (b, GPT_CONTEXT + 1), generator=g)
    return tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()


def _sgd(params):
    import torch

    return torch.optim.SGD(params, lr=0.01, momentum=0.9)


def _adamw(params):
    import torch

    return torch.optim.AdamW(params, lr=3e-4)


ZOO: dict[str, ZooModel] = {
    m.name: m
    for m in (
        ZooModel(
            name="mnist-mlp",
            description="784-512-256-128-10 MLP with ReLU (MNIST-shaped synthetic data)",
            params=567_434,
            sample="784 floats (a flattened 28x28 image)",
            default_batch_sizes=(32, 64, 128, 256),
            tokens_per_sample=None,
            _factory=_mlp,
            _batch=_mlp_batch,
            _optimizer=_sgd,
        ),
        ZooModel(
            name="resnet-small",
            description="ResNet-20-style CNN (3x3 basic blocks, 16/32/64 channels, batch norm), 10 classes",
            params=272_474,
            sample="3x32x32 image (CIFAR-shaped synthetic data)",
            default_batch_sizes=(32, 64, 128),
            tokens_per_sample=None,
            _factory=_resnet,
            _batch=_resnet_batch,
            _optimizer=_sgd,
        ),
        ZooModel(
            name="gpt-small",
            description="GPT-style decoder: 4 layers, d_model 256, 4 heads, vocab 1024, context 128",
            params=3_716_608,
            sample=f"{GPT_CONTEXT} tokens",
            default_batch_sizes=(8, 16, 32),
            tokens_per_sample=GPT_CONTEXT,
            _factory=_gpt,
            _batch=_gpt_batch,
            _optimizer=_adamw,
        ),
    )
}


def names() -> list[str]:
    """Zoo model names, in the order listed."""
    return list(ZOO)


def get(name: str) -> ZooModel:
    """The zoo entry called ``name``; :class:`UnknownModel` if there is none."""
    try:
        return ZOO[name]
    except KeyError:
        raise UnknownModel(name) from None
