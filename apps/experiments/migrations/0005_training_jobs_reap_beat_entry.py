"""The reaper's beat entry and task were renamed entity-first
(``experiments-training-jobs-reap`` → ``apps.experiments.tasks.training_jobs_reap``).
django-celery-beat's scheduler adds the new entry on start but keeps the old
row, which would send a task no worker knows every minute: remove it."""

from django.db import migrations

OLD_NAME = "experiments-reap-training-jobs"
OLD_TASK = "apps.experiments.tasks.reap_training_jobs"


def forwards(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=OLD_NAME, task=OLD_TASK).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0004_denormalise_experiment_id"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
