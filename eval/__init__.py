"""Evaluation: lm-eval tasks, blind pairwise judging with statistics, leaderboard."""
