"""Would a dynamically quantised (int8) export do? Load, speed, memory and the eval table.

    .venv/bin/python scripts/int8_eval.py

Quantises the bundled model's ONNX export (onnxruntime's ``quantize_dynamic``, per-channel
int8 weights) into a temporary folder, builds the corpus into an index with each graph, and
prints, for fp32 and int8: session load time and peak RSS in a fresh process, the warm median
of one query encode, the cosine to the fp32 vectors, and ``ampere-qa eval`` on each index.
Nothing is written into the model cache or the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# The peak is read from VmHWM, which exec resets: ru_maxrss would count the page tables the
# child copied from this large process before it exec'd.
LOAD = """
import sys, time, re
t = time.perf_counter()
import onnxruntime as ort
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
hwm = re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)
print(time.perf_counter() - t, int(hwm) / 1024)
"""


def main() -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from ampere_qa import Retriever, build_index
    from ampere_qa.embed.embedding import OnnxEmbedder, load_embedder
    from ampere_qa.embed.model.export import DATA_FILE, GRAPH_FILE, export_dir, read_export, sample_digest
    from ampere_qa.eval import evaluate, load_questions

    fp32 = load_embedder("bundled", engine="onnx")
    assert isinstance(fp32, OnnxEmbedder)
    model_dir = Path(fp32.location())
    record = read_export(model_dir)
    assert record is not None
    tmp = Path(tempfile.mkdtemp(prefix="ampere-int8-"))
    try:
        q8_model = tmp / "model"
        (q8_model / "onnx").mkdir(parents=True)
        for f in export_dir(model_dir).iterdir():
            if f.name not in (GRAPH_FILE, DATA_FILE):
                shutil.copy(f, q8_model / "onnx" / f.name)
        t = time.perf_counter()
        quantize_dynamic(str(export_dir(model_dir) / GRAPH_FILE), str(q8_model / "onnx" / GRAPH_FILE),
                         weight_type=QuantType.QInt8, per_channel=True, use_external_data_format=True)
        data = q8_model / "onnx" / DATA_FILE
        print(f"quantised in {time.perf_counter() - t:.1f} s; weights {data.stat().st_size / 2**20:.0f} MB")
        q8 = OnnxEmbedder(q8_model, {**record, "data_digest": sample_digest(data)})

        questions = load_questions(ROOT / "eval" / "questions.jsonl")
        texts = [q.question for q in questions]
        ref = fp32.embed_queries(texts)
        rows = []
        for name, emb, graph in (("fp32", fp32, export_dir(model_dir) / GRAPH_FILE),
                                 ("int8", q8, q8_model / "onnx" / GRAPH_FILE)):
            loads = [subprocess.run([sys.executable, "-c", LOAD, str(graph)], capture_output=True,
                                    text=True, check=True).stdout.split() for _ in range(3)]
            load_s = statistics.median(float(x[0]) for x in loads)
            rss = statistics.median(float(x[1]) for x in loads)
            emb.query_threads = 1
            emb.embed_queries(["warm up"])
            lat = []
            for text in texts:
                t = time.perf_counter()
                emb.embed_queries([text])
                lat.append(time.perf_counter() - t)
            emb.query_threads = None
            vecs = emb.embed_queries(texts)
            cos = np.sum(vecs * ref, axis=1)
            index = tmp / f"index-{name}"
            build_index(ROOT / "corpus", index, embedder=emb)
            report = evaluate(Retriever.load(index, embedder=emb), questions).to_dict()
            metrics = report["systems"]["ampere-qa"]["all"]
            rows.append((name, load_s, rss, statistics.median(lat) * 1000, float(cos.min()), metrics))
        keys = ["hit@1", "hit@3", "mrr@10", "answer_hit", "abstention", "false_abstention",
                "short_answer_em"]
        print("| graph | session load | load peak RSS | warm encode (1 thread) | min cosine to fp32 | "
              + " | ".join(keys) + " |")
        print("|---" * (5 + len(keys)) + "|")
        for name, load_s, rss, warm, cmin, m in rows:
            print(f"| {name} | {load_s:.2f} s | {rss:.0f} MB | {warm:.1f} ms | {cmin:.4f} | "
                  + " | ".join(str(m.get(k)) for k in keys) + " |")
        print(json.dumps({name: m for name, *_, m in rows}, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
