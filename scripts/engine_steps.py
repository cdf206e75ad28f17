"""Where a cold question's time goes, by engine: imports, model, tokenizer, one encode.

    .venv/bin/python scripts/engine_steps.py [--runs 3]

Each run starts one fresh process per engine, interleaved (sentence-transformers with torch,
then onnxruntime with the ONNX export and the query tokenizer), and prints the medians. The
encode is the median of 50 calls on 2 threads, after one warm-up call.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
QUESTION = "query: Qui dirige Ampere ?"

STEPS = """
import json, statistics, sys, time
engine, model_dir, question = sys.argv[1:4]
t = time.perf_counter()
if engine == "torch":
    import sentence_transformers, torch
    steps = {"imports": time.perf_counter() - t}
    t = time.perf_counter()
    model = sentence_transformers.SentenceTransformer(
        model_dir, device="cpu", model_kwargs={"dtype": torch.float32})
    steps["model"] = time.perf_counter() - t
    torch.set_num_threads(2)
    encode = lambda: model.encode(question, normalize_embeddings=True)
else:
    import onnxruntime, tokenizers
    steps = {"imports": time.perf_counter() - t}
    from pathlib import Path
    from ampere_qa.embed.model.export import OnnxEncoder, export_dir
    from ampere_qa.embed.model.querytok import QueryTokenizer
    folder = export_dir(Path(model_dir))
    t = time.perf_counter()
    QueryTokenizer(folder)
    steps["tokenizer"] = time.perf_counter() - t
    t = time.perf_counter()
    encoder = OnnxEncoder(folder, threads=2)  # its own tokenizer, then the session
    steps["model"] = time.perf_counter() - t - steps["tokenizer"]
    encode = lambda: encoder.encode([question], 384)
encode()
lat = []
for _ in range(50):
    t = time.perf_counter()
    encode()
    lat.append(time.perf_counter() - t)
steps["encode"] = statistics.median(lat)
print(json.dumps(steps))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    from ampere_qa.embed.model import ensure_bundled_model

    model_dir = str(ensure_bundled_model())
    found: dict[str, list[dict[str, float]]] = {"torch": [], "onnx": []}
    for _ in range(args.runs):
        for engine in found:
            out = subprocess.run([sys.executable, "-c", STEPS, engine, model_dir, QUESTION],
                                 check=True, capture_output=True, text=True, cwd=ROOT).stdout
            found[engine].append(json.loads(out.strip().splitlines()[-1]))
    print(f"medians of {args.runs} fresh processes per engine; load average {os.getloadavg()[0]:.1f}")
    for engine, runs in found.items():
        parts = ", ".join(f"{k} {statistics.median(r[k] for r in runs) * (1000 if k == 'encode' else 1):.2f}"
                          f"{' ms' if k == 'encode' else ' s'}" for k in runs[0])
        print(f"{engine}: {parts}")


if __name__ == "__main__":
    main()
