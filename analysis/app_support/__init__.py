"""What the app needs besides the methods: the launch config, teaching presets, warm-up, the findings
report and how values are formatted for people."""
