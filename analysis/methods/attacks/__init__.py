"""Fine-tuning attacks on a copy of the model (full or LoRA) and their starting points (variants)."""
