"""What ampere-qa knows of languages and domains, as data: language packs (``lang/``, one TOML
file per language code) and domain packs (``domain/``). They sit below every stage: the BM25
analyzer takes its stemmer and stop words from them, the answer layer its rules and replies."""
