"""Shared fixtures of the model oracle tests: the model file and the model_probe binary (set by ctest)."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def model_file():
    path = Path(os.environ.get("PAGEDATTN_MODEL") or os.environ.get("PAGEDATTN_MODEL_FILE")
                or REPO / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf")
    if not path.exists():
        pytest.fail(f"model not found at {path}: run scripts/fetch_model.sh or set PAGEDATTN_MODEL")
    return path


@pytest.fixture(scope="session")
def probe():
    path = os.environ.get("PAGEDATTN_MODEL_PROBE")
    if not path or not Path(path).exists():
        pytest.fail("PAGEDATTN_MODEL_PROBE must name the built model_probe binary (ctest sets it)")
    return path
