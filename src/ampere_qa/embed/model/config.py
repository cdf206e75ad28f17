"""The small JSON files of the converted directory, and the e5 prompts.

``config.json`` describes a plain ``BertModel``; the tokenizer files declare the fast tokenizer
written beside them; the sentence-transformers files chain Transformer, mean Pooling and
Normalize and declare the e5 prompts.
"""

from __future__ import annotations

from typing import Any

from .e5file import E5File

# The instruction prefixes e5 models were trained with: declared in the converted directory, and
# used by the embedder for any e5 model whose directory declares none.
E5_PROMPTS = {"query": "query: ", "passage": "passage: "}


def bert_config(f: E5File) -> dict[str, Any]:
    """``config.json``: a plain ``BertModel`` with the file's dimensions."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        # VOC (250037), not the number of pieces (docs/bundled-model.md, pitfall 1)
        "vocab_size": f.vocab,
        "hidden_size": f.hidden,
        "num_hidden_layers": f.layers,
        "num_attention_heads": f.heads,
        "intermediate_size": f.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": f.max_pos,
        "type_vocab_size": f.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": f.eps,
        "pad_token_id": f.specials["pad"],
        "bos_token_id": f.specials["bos"],
        "eos_token_id": f.specials["eos"],
        "position_embedding_type": "absolute",
        "use_cache": True,
        "dtype": "float32",
    }


def small_files(f: E5File) -> dict[str, Any]:
    """Every JSON file of the directory except the completion marker, by relative path."""
    return {"config.json": bert_config(f), **_tokenizer_files(f), **_sentence_transformers_files(f)}


def _tokenizer_files(f: E5File) -> dict[str, Any]:
    p = f.pieces
    sp = f.specials
    special_tokens = {
        "bos_token": p[sp["bos"]],
        "eos_token": p[sp["eos"]],
        "cls_token": p[sp["bos"]],
        "sep_token": p[sp["eos"]],
        "pad_token": p[sp["pad"]],
        "unk_token": p[sp["unk"]],
        "mask_token": "<mask>",
    }
    return {
        "tokenizer_config.json": {
            # Not XLMRobertaTokenizer: transformers 5 would rebuild the pipeline
            # (docs/bundled-model.md, pitfall 8).
            "tokenizer_class": "PreTrainedTokenizerFast",
            **special_tokens,
            "model_max_length": f.max_pos,
            "clean_up_tokenization_spaces": False,
            "model_input_names": ["input_ids", "attention_mask"],
        },
        "special_tokens_map.json": special_tokens,
    }


def _sentence_transformers_files(f: E5File) -> dict[str, Any]:
    return {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            },
        ],
        "sentence_bert_config.json": {"max_seq_length": f.max_pos, "do_lower_case": False},
        "1_Pooling/config.json": {
            # Mean over every token, <s>, </s> and the prompt included
            # (docs/bundled-model.md, pitfall 4).
            "word_embedding_dimension": f.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
        "config_sentence_transformers.json": {
            "prompts": dict(E5_PROMPTS),
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    }
