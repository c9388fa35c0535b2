"""The signed-timestamp tolerance is 1-3,600 seconds and cannot switch the check off.

Stored values outside the range move into it: 0 (which used to disable the check) becomes
the default of 300 s, anything over an hour becomes an hour.
"""

import django.core.validators
from django.db import migrations, models

LOW, HIGH, DEFAULT = 1, 3600, 300


def into_range(apps, schema_editor):
    registrations = apps.get_model("webhooks", "WebhookRegistration").objects
    registrations.filter(timestamp_tolerance__lt=LOW).update(timestamp_tolerance=DEFAULT)
    registrations.filter(timestamp_tolerance__gt=HIGH).update(timestamp_tolerance=HIGH)


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0002_event_body_lz4"),
    ]

    operations = [
        migrations.RunPython(into_range, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="webhookregistration",
            name="timestamp_tolerance",
            field=models.PositiveIntegerField(
                default=300,
                help_text=(
                    "Seconds a signed timestamp may differ from now (schemes with one): "
                    "1 to 3600. The check cannot be turned off."
                ),
                validators=[
                    django.core.validators.MinValueValidator(1),
                    django.core.validators.MaxValueValidator(3600),
                ],
            ),
        ),
    ]
