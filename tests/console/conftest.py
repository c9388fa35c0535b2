"""The console is looked at by an operator signed in to the admin."""

from tests.ui.conftest import operator, operator_user  # noqa: F401  (fixtures)
