"""noisymss: music models trained from imperfect labels."""

__version__ = "0.1.0"
