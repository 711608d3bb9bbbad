"""Importance scores of decoder weights. Every scorer returns ``{weight_name: fp32 tensor}`` shaped like
the (d_out × d_in) weight (or like the unit axis for unit scores); higher = more important."""
