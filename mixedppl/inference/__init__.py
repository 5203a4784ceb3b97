"""Inference beyond Wald: Kenward–Roger, F tests, likelihood-ratio tests, profile and bootstrap CIs."""
