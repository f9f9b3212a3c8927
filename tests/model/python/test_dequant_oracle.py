"""Our dequantization equals the gguf Python package's (gguf.quants.dequantize), bit for bit: for every
tensor of the model file, and for random blocks of every type we decode."""
import subprocess

import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize


def read_exact(stream, n):
    data = stream.read(n)
    assert len(data) == n, f"model_probe output ended early: wanted {n} bytes, got {len(data)}"
    return data


def test_every_tensor_of_the_model_equals_gguf_dequantize(model_file, probe):
    reader = GGUFReader(model_file)
    expected = {t.name: t for t in reader.tensors}
    seen = set()
    proc = subprocess.Popen([probe, "dequant", str(model_file)], stdout=subprocess.PIPE)
    stream = proc.stdout
    while header := stream.read(4):
        name = read_exact(stream, int(np.frombuffer(header, np.uint32)[0])).decode()
        qtype, rank = np.frombuffer(read_exact(stream, 8), np.uint32)
        shape = tuple(np.frombuffer(read_exact(stream, 8 * int(rank)), np.int64))
        ours = np.frombuffer(read_exact(stream, 4 * int(np.prod(shape))), np.float32).reshape(shape)
        t = expected[name]
        assert int(qtype) == int(t.tensor_type), name
        assert shape == tuple(int(d) for d in reversed(t.shape)), f"{name}: shape {shape} vs {t.shape}"
        ref = dequantize(t.data, t.tensor_type).reshape(shape)
        np.testing.assert_array_equal(ours, ref, err_msg=name)
        seen.add(name)
    assert proc.wait() == 0
    assert seen == set(expected), f"missing: {sorted(set(expected) - seen)[:5]}"
    assert len(seen) == 272


@pytest.mark.parametrize("qtype", [Q.F32, Q.F16, Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0,
                                   Q.Q4_K, Q.Q5_K, Q.Q6_K])
def test_random_blocks_equal_gguf_dequantize(probe, qtype):
    block, type_size = GGML_QUANT_SIZES[qtype]
    n_blocks = 4096 // block * 8
    raw = np.random.default_rng(int(qtype)).integers(0, 256, n_blocks * type_size, dtype=np.uint8)
    out = subprocess.run([probe, "dequant-raw", str(int(qtype)), str(n_blocks * block)], input=raw.tobytes(),
                         capture_output=True, check=True).stdout
    ours = np.frombuffer(out, np.float32)
    ref = dequantize(raw.reshape(n_blocks, type_size), qtype).reshape(-1)
    np.testing.assert_array_equal(ours, ref)  # NaNs (random f16 scales) count as equal
