"""The package logger. Library code logs; only the CLI configures handlers."""

import logging

logger = logging.getLogger("lightbunny")
logger.addHandler(logging.NullHandler())
