"""Our Llama forward (paged KV cache, batched prefill, then batched decode) equals an independent numpy
forward in float64 over dense KV, written here from the gguf package's dequantized weights in
Hugging Face's conventions: Q/K rows un-permuted back to HF order and RoPE by rotate_half. Agreement
therefore also checks our reading of convert_hf_to_gguf's permutation (adjacent-pair RoPE in GGUF order).
"""
import json
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader
from gguf.quants import dequantize

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tokenizer_llamacpp.json"
DECODE_STEPS = 32
REL_TOL = 1e-3


class NumpyLlama:
    def __init__(self, path):
        r = GGUFReader(path)
        f = {k: v.contents() for k, v in r.fields.items() if not k.startswith("tokenizer.")}
        self.n_layers = f["llama.block_count"]
        self.n_heads = f["llama.attention.head_count"]
        self.n_kv = f["llama.attention.head_count_kv"]
        self.eps = f["llama.attention.layer_norm_rms_epsilon"]
        self.theta = f["llama.rope.freq_base"]
        self.w = {t.name: dequantize(t.data, t.tensor_type).reshape([int(d) for d in reversed(t.shape)]).astype(np.float64)
                  for t in r.tensors}
        hidden = self.w["token_embd.weight"].shape[1]
        self.head_dim = hidden // self.n_heads

    def unpermute(self, w, heads):
        # convert_hf_to_gguf: gguf = hf.reshape(heads, 2, D/2, in).swapaxes(1, 2).reshape(out, in)
        out, inp = w.shape
        return w.reshape(heads, self.head_dim // 2, 2, inp).swapaxes(1, 2).reshape(out, inp)

    def rms(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def rope(self, x, pos):  # x [T, heads, D], HF rotate_half convention
        d = self.head_dim
        inv = 1.0 / (self.theta ** (np.arange(0, d, 2, dtype=np.float64) / d))
        ang = np.outer(pos, inv)
        cos = np.concatenate([np.cos(ang)] * 2, axis=-1)[:, None, :]
        sin = np.concatenate([np.sin(ang)] * 2, axis=-1)[:, None, :]
        rot = np.concatenate([-x[..., d // 2:], x[..., : d // 2]], axis=-1)
        return x * cos + rot * sin

    def forward(self, tokens):
        w, D, T = self.w, self.head_dim, len(tokens)
        pos = np.arange(T)
        x = w["token_embd.weight"][tokens]
        mask = np.triu(np.full((T, T), -np.inf), 1)
        for l in range(self.n_layers):
            p = f"blk.{l}."
            h = self.rms(x, w[p + "attn_norm.weight"])
            q = (h @ self.unpermute(w[p + "attn_q.weight"], self.n_heads).T).reshape(T, self.n_heads, D)
            k = (h @ self.unpermute(w[p + "attn_k.weight"], self.n_kv).T).reshape(T, self.n_kv, D)
            v = (h @ w[p + "attn_v.weight"].T).reshape(T, self.n_kv, D)
            q, k = self.rope(q, pos), self.rope(k, pos)
            group = self.n_heads // self.n_kv
            k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
            s = np.einsum("thd,shd->hts", q, k) / np.sqrt(D) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            a = np.einsum("hts,shd->thd", s, v).reshape(T, -1)
            x = x + a @ w[p + "attn_output.weight"].T
            h = self.rms(x, w[p + "ffn_norm.weight"])
            g, u = h @ w[p + "ffn_gate.weight"].T, h @ w[p + "ffn_up.weight"].T
            x = x + (g / (1 + np.exp(-g)) * u) @ w[p + "ffn_down.weight"].T
        head = w.get("output.weight", w["token_embd.weight"])
        return self.rms(x, w["output_norm.weight"]) @ head.T


def prompts():
    """Token ids from the llama.cpp fixture, so this test does not depend on our tokenizer."""
    cases = {c["text"]: c["ids"] for c in json.loads(FIXTURE.read_text())["cases"] if c["parse_special"]}
    return [cases["The quick brown fox jumps over the lazy dog."],
            cases["def f(x):\n    return x * 2\n"],
            cases[next(t for t in cases if t.startswith("<|im_start|>system\nYou are"))]]


def run_probe(probe, model_file, tmp_path, seqs, block_size):
    out = tmp_path / "logits.bin"
    cmd = [probe, "forward", str(model_file), str(out), "--decode", str(DECODE_STEPS), "--block-size", str(block_size)]
    for s in seqs:
        cmd += ["--prompt", ",".join(map(str, s))]
    subprocess.run(cmd, check=True)
    data = out.read_bytes()
    assert data[:4] == b"PAPR"
    n_seqs, vocab = struct.unpack_from("<II", data, 4)
    off, result = 12, []
    for _ in range(n_seqs):
        n, n_prompt = struct.unpack_from("<II", data, off)
        off += 8
        tokens = np.frombuffer(data, np.int32, n, off)
        off += 4 * n
        logits = np.frombuffer(data, np.float32, n * vocab, off).reshape(n, vocab)
        off += 4 * n * vocab
        result.append((n_prompt, tokens, logits))
    return result


@pytest.fixture(scope="module")
def oracle(model_file):
    return NumpyLlama(model_file)


@pytest.mark.parametrize("block_size", [16, 5])
def test_prefill_and_32_decode_steps_match_numpy(oracle, probe, model_file, tmp_path, block_size):
    seqs = prompts()
    assert all(8 <= len(s) <= 40 for s in seqs)
    results = run_probe(probe, model_file, tmp_path, seqs, block_size)
    for prompt, (n_prompt, tokens, ours) in zip(seqs, results):
        assert n_prompt == len(prompt) and tokens[:n_prompt].tolist() == prompt
        assert len(tokens) == len(prompt) + DECODE_STEPS
        ref = oracle.forward(tokens)
        rel = np.abs(ours - ref).max(axis=1) / np.abs(ref).max(axis=1)
        assert rel[:n_prompt].max() < REL_TOL, f"prefill rows: worst relative error {rel[:n_prompt].max():.2e}"
        assert rel[n_prompt:].max() < REL_TOL, f"decode rows: worst relative error {rel[n_prompt:].max():.2e}"
        # The decode inputs were our greedy picks: the oracle must agree with each of them.
        picked = ref[np.arange(n_prompt - 1, len(tokens) - 1), tokens[n_prompt:]]
        assert (picked >= ref[n_prompt - 1:-1].max(axis=1) - REL_TOL * np.abs(ref).max()).all()
        print(f"prompt {len(prompt)} tokens, block {block_size}: worst relative error prefill "
              f"{rel[:n_prompt].max():.2e}, decode {rel[n_prompt:].max():.2e}")
