"""Admin login lockout (django-axes): repeated failures from one client address lock it out.

Settings come from the environment (``CASTIEL_LOGIN_FAILURE_LIMIT``,
``CASTIEL_LOGIN_COOLOFF_MINUTES``); locked addresses are listed, and can be released, in the
admin under *Axes → Access attempts*.
"""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend


class LoginLockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout check for logins over HTTP.

    ``authenticate()`` called without a request (a shell, the test client's ``login()``)
    has no client address to count or lock, so it is passed on to the next backend; every
    login form, the admin's included, passes its request.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
