"""How a run moves: per-step dynamics, oscillation between states, periodicity, recurrence, the verdict."""
