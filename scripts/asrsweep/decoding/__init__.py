"""The n-gram LM, the lexicon, the beam-search decoder sweep and the frozen decode."""
