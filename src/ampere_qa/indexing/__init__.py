"""The index: BM25 and its lexicon, the vector stores, the index folder, its manifest and the build."""
