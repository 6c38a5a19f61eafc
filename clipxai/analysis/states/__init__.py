"""From snapshots to states: the features looked at, clusters, the smoothed state path, dwell segments."""
