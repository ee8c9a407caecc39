"""Music source separation: training losses, robust reductions for noisy labels, chunked inference, song scores."""
