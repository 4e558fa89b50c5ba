"""Corpus preparation (demo or real), features and the sentencepiece tokenizer."""
