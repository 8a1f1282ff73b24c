"""pneumolens: AI-assisted pneumonia analysis of chest CT."""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
