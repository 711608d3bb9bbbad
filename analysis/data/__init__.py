"""Prompt sets: the shipped real sets (one folder each, with licence and provenance), the formats a user
may bring, the data provider of a loaded model, and the demo organism."""
