"""The toy world: synthetic captioned images with known answers, and CLIPs trained on it."""
