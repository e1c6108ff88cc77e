"""Real time: the durable log of listening events (listens, skips, plays), per-user fold-in state, replay evaluation."""
