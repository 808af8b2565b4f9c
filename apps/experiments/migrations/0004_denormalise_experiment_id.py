"""Params, latest metrics and tags carry their run's experiment, so that run
search can start from the experiment in these tables' own indexes. Added
nullable, back-filled from the runs, then made NOT NULL."""

import django.db.models.deletion
import django.db.models.functions.text
from django.db import migrations, models

TABLES = ("experiments_param", "experiments_latestmetric", "experiments_runtag")


def backfill(apps, schema_editor):
    connection = schema_editor.connection
    quote = schema_editor.quote_name
    with connection.cursor() as cursor:
        for table in TABLES:
            if connection.vendor == "postgresql":
                cursor.execute(f"UPDATE {quote(table)} AS t SET experiment_id = r.experiment_id "
                               f"FROM {quote('experiments_run')} AS r WHERE r.id = t.run_id")
            else:
                cursor.execute(f"UPDATE {quote(table)} SET experiment_id = (SELECT r.experiment_id FROM "
                               f"{quote('experiments_run')} AS r WHERE r.id = {quote(table)}.run_id)")


# PostgreSQL estimates ``key = 'estimator' and value = 'random_forest'`` as
# if key and value were independent (a value's frequency is over all keys),
# several times too low, and then prefers plans that sort every match to
# walking a metric's index and stopping after a page. Multivariate MCV
# statistics give it the frequency of each (key, value) pair.
STATISTICS = (("param_key_value_stats", "experiments_param"), ("run_tag_key_value_stats", "experiments_runtag"))


def create_statistics(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    for name, table in STATISTICS:
        schema_editor.execute(f"CREATE STATISTICS IF NOT EXISTS {quote(name)} (mcv) ON key, value FROM {quote(table)}")
        schema_editor.execute(f"ANALYZE {quote(table)}")


def drop_statistics(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _ in STATISTICS:
        schema_editor.execute(f"DROP STATISTICS IF EXISTS {schema_editor.quote_name(name)}")


def _field(null):
    return models.ForeignKey(db_constraint=False, db_index=False, editable=False, null=null,
                             on_delete=django.db.models.deletion.DO_NOTHING, related_name="+",
                             to="experiments.experiment")


class Migration(migrations.Migration):

    dependencies = [
        ("experiments", "0003_search_value_prefix_indexes"),
    ]

    operations = [
        *[migrations.AddField(model_name=model, name="experiment", field=_field(True))
          for model in ("param", "latestmetric", "runtag")],
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False),
        *[migrations.AlterField(model_name=model, name="experiment", field=_field(False))
          for model in ("param", "latestmetric", "runtag")],
        migrations.AddIndex(
            model_name="latestmetric",
            index=models.Index(fields=["experiment", "key", "value", "run"], name="latest_metric_exp_key_val_idx"),
        ),
        migrations.AddIndex(
            model_name="param",
            index=models.Index(models.F("experiment"), models.F("key"),
                               django.db.models.functions.text.Left("value", 100), models.F("run"),
                               name="param_exp_key_value_idx"),
        ),
        migrations.AddIndex(
            model_name="runtag",
            index=models.Index(models.F("experiment"), models.F("key"),
                               django.db.models.functions.text.Left("value", 100), models.F("run"),
                               name="run_tag_exp_key_value_idx"),
        ),
        migrations.RunPython(create_statistics, drop_statistics, elidable=False),
    ]
