"""Two processes, one event flow: see ``web.py`` and ``worker.py``."""
