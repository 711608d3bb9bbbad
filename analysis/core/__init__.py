"""The core: loading a model pair and its uniform adapter, reversible edits, the results cache, chat
formatting, generation and decoding, memory plans, and the one evaluation of a model state."""
