from django.db import migrations, models
from django.db.models.functions import TruncDate

import django.utils.timezone

import papers.models


def listed_from_first_seen(apps, schema_editor):
    """Papers stored before listing days existed were news on the day they reached us."""
    Paper = apps.get_model("papers", "Paper")
    Paper.objects.update(listed=TruncDate("first_seen"))


class Migration(migrations.Migration):
    dependencies = [("papers", "0002_ingest_fetch_state")]

    operations = [
        migrations.AddField(
            model_name="paper",
            name="listed",
            field=models.DateField(
                db_index=True, default=papers.models.today, help_text="the listing day it was announced for"
            ),
        ),
        migrations.RunPython(listed_from_first_seen, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="paper",
            name="first_seen",
            field=models.DateTimeField(
                db_index=True, default=django.utils.timezone.now, help_text="when this server first saw it"
            ),
        ),
        migrations.AlterModelOptions(name="paper", options={"ordering": ["-listed", "-first_seen", "-upvotes"]}),
    ]
