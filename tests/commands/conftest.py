from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.syncing.fixtures import enqueued  # noqa: F401  (fixtures)
from tests.syncing.outbound_support import pushes  # noqa: F401
from tests.syncing.sandbox_fixtures import sandbox  # noqa: F401


class Ran:
    def __init__(self, out: str, err: str):
        self.out, self.err = out, err


@pytest.fixture
def command():
    """``command(name, *args)`` → Ran(out, err); a CommandError propagates."""

    def run(name, *args, **options):
        out, err = StringIO(), StringIO()
        call_command(name, *args, stdout=out, stderr=err, **options)
        return Ran(out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def fails(command):
    """``fails(name, *args)`` → the CommandError message (one line, as operators see it)."""

    def run(name, *args, **options):
        with pytest.raises(CommandError) as caught:
            command(name, *args, **options)
        message = str(caught.value)
        assert "\n" not in message, message
        return message

    return run
