from django.conf import settings
from django.db import models
from django.db.models import F
from django.db.models.functions import Left

from apps.experiments.choices import JobStatus, RunStatus, SearchKind, TaskType

PARAM_VALUE_MAX_LENGTH = 6000
TAG_VALUE_MAX_LENGTH = 8000
# Params and tags are indexed on (key, the first VALUE_INDEX_PREFIX characters
# of the value, run): a btree entry over a whole value could exceed
# PostgreSQL's ~2700-byte limit. Search adds the matching prefix condition
# to = and in comparisons so the planner can use the index.
VALUE_INDEX_PREFIX = 100


def fill_experiment_ids(objs) -> None:
    """Set ``experiment_id`` on params, latest metrics and tags that lack it,
    from their runs (one query for those whose run is not loaded)."""
    missing = [obj for obj in objs if obj.experiment_id is None]
    unknown = set()
    for obj in missing:
        run = obj._state.fields_cache.get("run")
        if run is not None and run.pk == obj.run_id:
            obj.experiment_id = run.experiment_id
        else:
            unknown.add(obj.run_id)
    if unknown:
        experiments = dict(Run.objects.filter(pk__in=unknown).values_list("pk", "experiment_id"))
        for obj in missing:
            if obj.experiment_id is None:
                obj.experiment_id = experiments.get(obj.run_id)


class RunScopedQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        fill_experiment_ids(objs)
        return super().bulk_create(objs, *args, **kwargs)


class RunScopedModel(models.Model):
    """A row belonging to a run that also carries the run's experiment
    (denormalised, so that search can start from the experiment in the
    table's own indexes). Runs never change experiment; ``save`` and
    ``bulk_create`` fill ``experiment_id`` from the run when it is not given.
    No foreign-key constraint or cascade of its own: rows go with their run."""

    experiment = models.ForeignKey("Experiment", on_delete=models.DO_NOTHING, db_constraint=False,
                                   db_index=False, editable=False, related_name="+")

    objects = RunScopedQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        fill_experiment_ids([self])
        super().save(*args, **kwargs)


class Experiment(models.Model):
    """A question being worked on (e.g. "predict library-prep QC"), grouping
    the runs that try to answer it. Carries object permissions."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="experiments")
    tags = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Run(models.Model):
    """One attempt: parameters in, metrics and artifacts out. Runs nest (a
    hyperparameter search's children point at its parent run)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="runs")
    name = models.CharField(max_length=250, blank=True)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.RUNNING, db_index=True)
    status_reason = models.TextField(blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="runs")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    dataset_version = models.ForeignKey(
        "datasets.DatasetVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    source_version = models.CharField(max_length=200, blank=True, help_text="Code version, e.g. a git commit.")
    note = models.TextField(blank=True)
    start_time = models.DateTimeField(db_index=True)
    end_time = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-start_time", "-id"]
        indexes = [models.Index(fields=["experiment", "-start_time", "-id"])]

    def __str__(self):
        return self.name or f"run {self.pk}"


class Param(RunScopedModel):
    """A run's input, written once: the same value again is accepted, a
    different value is refused. Values are at most ``PARAM_VALUE_MAX_LENGTH``
    characters (MLflow's limit)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="params")
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="param_key_unique_per_run")]
        indexes = [models.Index(F("key"), Left("value", VALUE_INDEX_PREFIX), F("run"),
                                name="param_key_value_prefix_idx"),
                   models.Index(F("experiment"), F("key"), Left("value", VALUE_INDEX_PREFIX), F("run"),
                                name="param_exp_key_value_idx")]

    def __str__(self):
        return f"{self.key}={self.value}"


class Metric(models.Model):
    """One point of a metric's history (append-only)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metrics")
    key = models.CharField(max_length=250)
    value = models.FloatField()
    step = models.BigIntegerField(default=0)
    timestamp = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["run", "key", "step"], name="metric_history_idx")]

    def __str__(self):
        return f"{self.key}@{self.step}={self.value}"


class LatestMetric(RunScopedModel):
    """The latest (highest step, then newest) value of each metric of a run,
    kept in step with ``Metric`` so search and sorting never scan history."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="latest_metrics")
    key = models.CharField(max_length=250)
    value = models.FloatField()
    step = models.BigIntegerField(default=0)
    timestamp = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="latest_metric_unique")]
        # (key, value, run): search reads the runs whose metric passes a
        # comparison, in value order, from the index alone; the same led by
        # the experiment for searches within one experiment.
        indexes = [models.Index(fields=["key", "value", "run"], name="latest_metric_key_val_run_idx"),
                   models.Index(fields=["experiment", "key", "value", "run"], name="latest_metric_exp_key_val_idx")]

    def __str__(self):
        return f"{self.key}={self.value}"


class RunTag(RunScopedModel):
    """A mutable label on a run; values are at most ``TAG_VALUE_MAX_LENGTH``
    characters."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="run_tag_unique")]
        indexes = [models.Index(F("key"), Left("value", VALUE_INDEX_PREFIX), F("run"),
                                name="run_tag_key_value_prefix_idx"),
                   models.Index(F("experiment"), F("key"), Left("value", VALUE_INDEX_PREFIX), F("run"),
                                name="run_tag_exp_key_value_idx")]

    def __str__(self):
        return f"{self.key}={self.value}"


class Artifact(models.Model):
    """A file a run produced, in artifact storage. Well-known paths written by
    training jobs (the registry relies on them):

    * ``model/model.skops`` — the fitted scikit-learn Pipeline (skops format)
    * ``model/signature.json`` — the input signature (see docs/experiments.md)
    * ``model/input_example.json`` — a few input rows as a list of records
    * ``evaluation/test_indices.json`` — row positions of the test split in
      the run's dataset version, for the user's own analysis; the registry's
      quality gates recompute the split from the training job instead
    * ``plots/*.json`` — plotly figures
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="artifacts")
    path = models.CharField(max_length=500)
    file = models.CharField(max_length=500, help_text="Name in artifact storage.")
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    content_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["path"]
        constraints = [models.UniqueConstraint(fields=["run", "path"], name="artifact_path_unique_per_run")]

    def __str__(self):
        return self.path


class TrainingJob(models.Model):
    """A request to train on a valid dataset version, run on the ``training``
    queue. Its run (and, for a search, the run's children) record everything
    the job produced."""

    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="training_job")
    # A hyperparameter search is one job with one child job per candidate.
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    dataset_version = models.ForeignKey(
        "datasets.DatasetVersion", on_delete=models.PROTECT, related_name="training_jobs"
    )
    target_column = models.CharField(max_length=200)
    task = models.CharField(max_length=20, choices=TaskType.choices)
    estimator = models.CharField(max_length=50)
    hyperparameters = models.JSONField(default=dict, blank=True)
    search_kind = models.CharField(max_length=10, choices=SearchKind.choices, default=SearchKind.NONE)
    search_space = models.JSONField(default=dict, blank=True)
    search_iterations = models.PositiveIntegerField(default=0)
    search_metric = models.CharField(max_length=50, blank=True)
    # {"test_size": 0.2, "validation_size": 0.1, "seed": 42, "stratify": true}
    split = models.JSONField(default=dict, blank=True)
    cv_folds = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0)
    progress_message = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="Hostname of the worker that ran it.")
    # Written every few seconds while a worker trains; the reaper fails jobs
    # whose worker went silent (killed, out of memory, machine gone).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="training_job_status_beat_idx")]

    def __str__(self):
        return f"training job {self.pk} ({self.estimator})"
