"""The votes service: one vote per voter per idea, recorded once and published as facts."""
