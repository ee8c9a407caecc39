"""Music source separation: training losses, robust reductions for noisy labels, Wiener filtering."""
