"""Checking the analysis against planted truth: synthetic trajectories and their scores."""
