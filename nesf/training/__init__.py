"""Training: the trainer, its recipes and the stages after it, progress events, run specs and their options."""
