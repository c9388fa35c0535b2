"""Castiel's settings with django-q2 recycling each worker after two tasks, for the live test
that a recycled worker exports its spans (``Q_CLUSTER`` has no variable for ``recycle``)."""

from castiel.settings import *  # noqa: F403
from castiel.settings import Q_CLUSTER

Q_CLUSTER = {**Q_CLUSTER, "recycle": 2}
