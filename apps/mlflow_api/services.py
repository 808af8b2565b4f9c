"""Registering a model that MLflow's client logged, through the registry's
services: the MLmodel directory's flavour and format are checked (scikit-learn
saved with skops only), its signature (column specs) is translated into the
platform's and logged beside it, and ``model_version_register`` then reads
the skops file through the one trusted-class loader (``apps.core.modelio``)
like every other model. Nothing here writes a row itself."""

from __future__ import annotations

import io
import json

import yaml

from apps.core.errors import ValidationFailed
from apps.core.permissions import has_perm
from apps.experiments import services as experiment_services
from apps.registry import services as registry_services
from apps.registry.services.versions import MODEL_PATH, SIGNATURE_PATH, read_run_artifact

MODEL_DIR = MODEL_PATH.split("/")[0]  # "model"
MLMODEL_PATH = f"{MODEL_DIR}/MLmodel"
# MLflow's column types (mlflow.types.DataType) -> the platform's input types.
COLUMN_TYPES = {"double": "float", "float": "float", "long": "integer", "integer": "integer",
                "boolean": "boolean", "string": "text", "datetime": "datetime"}
SKOPS_HINT = ("log it with skops instead: mlflow.sklearn.log_model(model, name='model', "
              "serialization_format='skops') (MLflow's default), then register that run's 'model'")


def mlmodel_signature(mlmodel: dict, *, task: str) -> dict | None:
    """The platform's signature for an MLmodel's column-based signature
    (``{"inputs": [{"name", "type", "nullable"}], "target", "task"}``), or
    None when it has none (or a tensor signature)."""
    signature = mlmodel.get("signature") or {}
    try:
        inputs = json.loads(signature.get("inputs") or "null")
        outputs = json.loads(signature.get("outputs") or "null") or []
    except (TypeError, ValueError):
        return None
    if not isinstance(inputs, list) or not all(isinstance(c, dict) and c.get("name") for c in inputs):
        return None
    columns = [{"name": str(c["name"]), "type": COLUMN_TYPES.get(str(c.get("type")), "text"),
                "nullable": not c.get("required", True)} for c in inputs]
    target = next((str(o["name"]) for o in outputs if isinstance(o, dict) and o.get("name")), "")
    return {"inputs": columns, "target": target, "task": task, "source": "mlflow"}


def check_mlmodel(data: bytes) -> dict:
    """The parsed MLmodel file, refused unless it is scikit-learn saved with skops."""
    try:
        mlmodel = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValidationFailed(f"The run's {MLMODEL_PATH} is not valid YAML: {exc}", code="invalid_mlmodel")
    flavors = (mlmodel or {}).get("flavors") or {}
    sklearn = flavors.get("sklearn")
    if not isinstance(sklearn, dict):
        raise ValidationFailed(f"Only scikit-learn models can be registered; the MLmodel has flavors "
                               f"{', '.join(sorted(flavors)) or 'none'}.", code="unsupported_flavor")
    fmt = sklearn.get("serialization_format")
    if fmt != "skops" or sklearn.get("pickled_model") != "model.skops":
        raise ValidationFailed(f"The model was saved as {fmt or 'a pickle'}; pickled models are never loaded here "
                               f"(loading a pickle runs whatever code it names). To register it, {SKOPS_HINT}.",
                               code="pickled_model_refused")
    return mlmodel


def mlflow_model_version_create(*, actor, registered_model, run, path: str, description: str = ""):
    """Version N of ``registered_model`` from ``path`` of ``run``: an MLmodel
    directory logged by MLflow's client, or a platform training run's model."""
    if path.strip("/") != MODEL_DIR:
        raise ValidationFailed(f"Register the model logged at '{MODEL_DIR}' of the run (got {path!r}): log it with "
                               f"name='{MODEL_DIR}'.", code="unsupported_model_path")
    mlmodel_bytes = read_run_artifact(run, MLMODEL_PATH)
    if mlmodel_bytes is not None:
        mlmodel = check_mlmodel(mlmodel_bytes)
        signature = mlmodel_signature(mlmodel, task=registered_model.task_type)
        has_signature = run.artifacts.filter(path=SIGNATURE_PATH).exists()
        if signature and not has_signature and has_perm(actor, "experiments.change_run", run, owner_id=run.user_id):
            experiment_services.artifact_log(actor=actor, run=run, path=SIGNATURE_PATH,
                                             fileobj=io.BytesIO(json.dumps(signature).encode()),
                                             content_type="application/json")
    elif read_run_artifact(run, MODEL_PATH) is None:
        raise ValidationFailed(f"Run {run.pk} has no model at '{MODEL_DIR}' (no MLmodel file and no "
                               f"{MODEL_PATH}).", code="no_model_artifact")
    return registry_services.model_version_register(registered_model=registered_model, run=run, actor=actor,
                                                    description=description)
