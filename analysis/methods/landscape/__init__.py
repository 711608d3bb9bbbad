"""Safety landscape (Peng et al. 2024): directions in weight space, grids of ASR/utility, VISAGE."""
