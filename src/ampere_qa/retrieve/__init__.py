"""Finding the passages that match a question: hybrid ranking (dense sentences and BM25) and
the off-topic gate."""
