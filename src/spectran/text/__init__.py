"""Semantic item embeddings E: text encoders, the embedding cache, ``spectran encode``.

Entry points: :func:`spectran.text.api.load_or_encode` (E for a prepared dataset, encoded once
and cached) and :func:`spectran.text.api.embedding_path` (where that cache lives).
"""
