"""Create the database, a user and the OAuth2 application. Prints the client id as JSON.

Usage: OAUTH_SERVER_DB=... python bootstrap.py '{"redirect_uris": "...", "client_secret": "..."}'
"""

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oauth_settings")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import django

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from oauth2_provider.models import Application  # noqa: E402

options = json.loads(sys.argv[1])
call_command("migrate", verbosity=0)
User.objects.create_user("alice", password=options.get("password", "alice-password"))
app = Application.objects.create(
    name="castiel",
    client_id=options.get("client_id", "castiel-client"),
    client_secret=options["client_secret"],
    client_type=Application.CLIENT_CONFIDENTIAL,
    authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
    redirect_uris=options["redirect_uris"],
    skip_authorization=True,
    algorithm="",
)
print(json.dumps({"client_id": app.client_id}))
