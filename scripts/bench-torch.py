#!/usr/bin/env python3
"""PyTorch's CPU training step on rljob's benchmark shapes, side by side.

Builds the Llama-style model of trainer/bench_test.go (tied embeddings,
RMSNorm, RoPE, GQA attention, SwiGLU) in PyTorch, runs the RL path of
BenchmarkTrainStepLogp / BenchmarkTrainStepQwen (log-probs and entropy at
temperature 1, backward, AdamW) in fp32 on 2 threads, and prints ms/step,
tokens/s and GFLOP per CPU-second with the same FLOP count (6 · params in
matmuls · tokens). Debian's python3-torch (1.13) is enough:

    apt-get install python3-torch
    /usr/bin/python3 scripts/bench-torch.py b qwen0.5b
"""
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

SHAPES = {  # name: layers, hidden, heads, kv heads, intermediate, vocab, B, T
    "b": (6, 256, 8, 8, 704, 512, 8, 128),
    "c": (12, 768, 12, 12, 2048, 50257, 4, 64),
    "qwen0.5b": (24, 896, 14, 2, 4864, 151936, 2, 256),
}


class Layer(torch.nn.Module):
    def __init__(s, C, H, KV, I):
        super().__init__()
        s.H, s.KV, s.D = H, KV, C // H
        s.n1, s.n2 = torch.nn.Parameter(torch.ones(C)), torch.nn.Parameter(torch.ones(C))
        s.q = torch.nn.Linear(C, H * s.D, bias=False)
        s.k = torch.nn.Linear(C, KV * s.D, bias=False)
        s.v = torch.nn.Linear(C, KV * s.D, bias=False)
        s.o = torch.nn.Linear(H * s.D, C, bias=False)
        s.gate = torch.nn.Linear(C, I, bias=False)
        s.up = torch.nn.Linear(C, I, bias=False)
        s.down = torch.nn.Linear(I, C, bias=False)

    def forward(s, x, cos, sin, mask):
        B, T, C = x.shape
        h = rms(x, s.n1)
        q = rope(s.q(h).view(B, T, s.H, s.D).transpose(1, 2), cos, sin)
        k = rope(s.k(h).view(B, T, s.KV, s.D).transpose(1, 2), cos, sin)
        v = s.v(h).view(B, T, s.KV, s.D).transpose(1, 2)
        k = k.repeat_interleave(s.H // s.KV, dim=1)
        v = v.repeat_interleave(s.H // s.KV, dim=1)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(s.D) + mask, dim=-1) @ v
        x = x + s.o(a.transpose(1, 2).reshape(B, T, C))
        h = rms(x, s.n2)
        return x + s.down(F.silu(s.gate(h)) * s.up(h))


def rms(x, w, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, cos, sin):
    d = x.shape[-1] // 2
    x1, x2 = x[..., :d], x[..., d:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def bench(name, steps=3):
    L, C, H, KV, I, V, B, T = SHAPES[name]
    torch.manual_seed(1)
    emb = torch.nn.Parameter(torch.randn(V, C) * 0.02)
    layers = torch.nn.ModuleList([Layer(C, H, KV, I) for _ in range(L)])
    nf = torch.nn.Parameter(torch.ones(C))
    params = [emb, nf] + list(layers.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4)
    D = C // H
    inv = 1.0 / (10000 ** (torch.arange(0, D, 2).float() / D))
    ang = torch.arange(T).float()[:, None] * inv[None, :]
    cos, sin = ang.cos(), ang.sin()
    mask = torch.full((T, T), float("-inf")).triu(1)
    tok = torch.randint(0, V, (B, T))
    tgt = torch.roll(tok, -1, 1)

    def step():
        opt.zero_grad(set_to_none=False)
        x = emb[tok]
        for l in layers:
            x = l(x, cos, sin, mask)
        logits = rms(x, nf) @ emb.t()
        lp = torch.log_softmax(logits, -1)
        logp = lp.gather(-1, tgt[..., None]).squeeze(-1)
        ent = -(lp.exp() * lp).sum(-1)
        loss = -(logp.mean()) - 0.01 * ent.mean()
        loss.backward()
        opt.step()

    step()  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    sec = (time.perf_counter() - t0) / steps
    cpu = (time.process_time() - c0) / steps
    mm = L * (C * H * D + 2 * C * KV * D + H * D * C + 3 * C * I) + V * C
    flop = 6 * mm * B * T
    print(f"torch {torch.__version__} {name}: {sec * 1e3:.1f} ms/step, {B * T / sec:.0f} tokens/s, "
          f"{flop / sec / 1e9:.1f} GFLOP/s, {flop / cpu / 1e9:.1f} GFLOP/cpu-s ({torch.get_num_threads()} threads)")


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    for n in sys.argv[1:] or ["b"]:
        bench(n)
