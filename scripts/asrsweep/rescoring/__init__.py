"""The Transformer LM, n-best scoring and grid-search rescoring."""
