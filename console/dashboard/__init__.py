"""The operations dashboard (an admin page): figures in ``selectors``, SVG in ``charts``."""
