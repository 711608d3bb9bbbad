"""One package or module per method of the papers: critical regions, the safety landscape, spectra and
LoX, fine-tuning attacks, representations and alignment depth."""
