from django.db import migrations, models


class Migration(migrations.Migration):
    """The admin's plan list sorts by start date (newest first, then id): an index in that
    order lets it read one page instead of sorting every plan."""

    dependencies = [("plans", "0012_pages_baseline_index")]

    operations = [
        migrations.AddIndex(
            model_name="plan",
            index=models.Index(fields=["start_date", "id"], name="plan_start_idx"),
        ),
    ]
