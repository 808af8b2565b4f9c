"""Settings shared by every environment.

Everything that differs between machines comes from the environment (see the
table in the README). Defaults are the embedded ones: a SQLite file and a
filesystem Celery broker under ``var/``, so a fresh machine needs no services.
"""

from pathlib import Path

import environ

from celery_app.schedule import BEAT_SCHEDULE

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(environ.Env().str("MLOPS_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Script on a page never needs the session or CSRF cookies: the session stays
# out of reach of any injected script, and the page's own JavaScript reads
# the CSRF token from <meta name="csrf-token"> (templates/base.html).
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "django_celery_beat",
    "django_celery_results",
    "apps.core",
    "apps.datasets",
    "apps.experiments",
    "apps.registry",
    "apps.mlflow_api",
    "apps.serving",
    "apps.abtests",
    "apps.monitoring",
    "apps.dashboard",
]

MIDDLEWARE = [
    "apps.core.middleware.RequestIdMiddleware",
    "apps.core.middleware.ContentSecurityPolicyMiddleware",
    "apps.core.middleware.FriendlyNotFoundMiddleware",
    "apps.core.middleware.PrometheusMiddleware",
    "apps.core.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.core.middleware.LoginRequiredMiddleware",
]

ROOT_URLCONF = "mlops_site.urls"
WSGI_APPLICATION = "mlops_site.wsgi.application"
ASGI_APPLICATION = "mlops_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.core.context_processors.navigation",
                "apps.core.context_processors.csp_nonce",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'mlops.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the worker write while the web process reads; IMMEDIATE
    # transactions make concurrent writers queue instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "core.User"

# --- Cache, broker ----------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="mlops"),
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
_broker_prefix = env.str("CELERY_BROKER_KEY_PREFIX", default="")
if _broker_prefix:
    CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = _broker_prefix
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_RESULT_EXPIRES = 7 * 24 * 3600
CELERY_CACHE_BACKEND = "default"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES_NAMES = ["default", "training", "monitoring", "rollouts"]
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=30 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=25 * 60)
CELERY_TASK_TRACK_STARTED = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = BEAT_SCHEDULE
CELERY_TIMEZONE = "UTC"

# --- Artifact storage -------------------------------------------------------
ARTIFACT_STORAGE = env.str("ARTIFACT_STORAGE", default="filesystem")
ARTIFACT_ROOT = Path(env.str("ARTIFACT_ROOT", default=str(VAR_DIR / "artifacts")))
if ARTIFACT_STORAGE == "s3":
    _artifacts = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("ARTIFACT_S3_BUCKET", default="mlops-artifacts"),
            "endpoint_url": env.str("ARTIFACT_S3_ENDPOINT_URL", default="") or None,
            "file_overwrite": False,
        },
    }
else:
    _artifacts = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(ARTIFACT_ROOT), "base_url": "/artifacts/"},
    }
STORAGES = {
    "default": _artifacts,
    "artifacts": _artifacts,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = str(ARTIFACT_ROOT)

# --- Serving (docs/serving.md) -----------------------------------------------
# Queue of the rollout state machine's ticks (dedicated rollout workers, tests).
SERVING_ROLLOUT_QUEUE = env.str("SERVING_ROLLOUT_QUEUE", default="rollouts")
# Prediction logs older than this are deleted by a daily task.
SERVING_LOG_RETENTION_DAYS = env.int("SERVING_LOG_RETENTION_DAYS", default=30)
# After a rollout completes, the new version bakes this long: if it breaks its
# error-rate or p95 thresholds meanwhile, the previous deployment is restored
# on its own. An endpoint or a deployment's config (bake_minutes) overrides it.
DEPLOYMENT_BAKE_MINUTES = env.int("DEPLOYMENT_BAKE_MINUTES", default=15)

# --- Monitoring: metric series (docs/monitoring.md) -------------------------
# How long metric series points are kept, per granularity, in days (empty: forever).
MONITORING_RETENTION_MINUTE_DAYS = env.int("MONITORING_RETENTION_MINUTE_DAYS", default=14)
MONITORING_RETENTION_HOUR_DAYS = env.int("MONITORING_RETENTION_HOUR_DAYS", default=400)
MONITORING_RETENTION_DAY_DAYS = env.int("MONITORING_RETENTION_DAY_DAYS", default=None)
# /metrics names endpoints and models only when METRICS_TOKEN protects it, or when this
# says the scrape address is private anyway.
MONITORING_METRICS_PUBLIC = env.bool("MONITORING_METRICS_PUBLIC", default=False)

# --- Deployment backend (docs/kubernetes.md) ---------------------------------
# "local": this platform's own web processes serve every deployed version.
# "kubernetes": each (endpoint, version) also gets a Kubernetes Deployment and
# Service running this image in serving mode.
DEPLOYMENT_BACKEND = env.str("DEPLOYMENT_BACKEND", default="local")
# Empty: the namespace the platform's own pod runs in (or "default" outside a cluster).
KUBERNETES_NAMESPACE = env.str("KUBERNETES_NAMESPACE", default="")
KUBERNETES_IMAGE = env.str("KUBERNETES_IMAGE", default="tracseq/mlops:latest")
KUBERNETES_IMAGE_PULL_POLICY = env.str("KUBERNETES_IMAGE_PULL_POLICY", default="IfNotPresent")
# In the cluster the pod's service account is used (docker/k8s/rbac.yaml);
# outside it, a kubeconfig file (empty: ~/.kube/config) and optional context.
KUBERNETES_IN_CLUSTER = env.bool("KUBERNETES_IN_CLUSTER", default=True)
KUBERNETES_KUBECONFIG = env.str("KUBERNETES_KUBECONFIG", default="")
KUBERNETES_CONTEXT = env.str("KUBERNETES_CONTEXT", default="")
# Service account of the serving pods (they need no API access; empty: the namespace default).
KUBERNETES_SERVICE_ACCOUNT = env.str("KUBERNETES_SERVICE_ACCOUNT", default="")
KUBERNETES_CONFIG_MAP = env.str("KUBERNETES_CONFIG_MAP", default="mlops-config")
KUBERNETES_SECRET = env.str("KUBERNETES_SECRET", default="mlops-secrets")
KUBERNETES_SERVING_WORKERS = env.int("KUBERNETES_SERVING_WORKERS", default=2)
KUBERNETES_SERVING_THREADS = env.int("KUBERNETES_SERVING_THREADS", default=4)
KUBERNETES_MAX_REPLICAS = env.int("KUBERNETES_MAX_REPLICAS", default=20)
KUBERNETES_REQUEST_TIMEOUT = env.float("KUBERNETES_REQUEST_TIMEOUT", default=10.0)

# --- Static -------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "apps.core.staticfinders.PlotlyFinder",
]
# Cached for a year: names with a content hash (the manifest storage of
# production) and plotly.js under its version's name (every setting, so the
# 4.6 MB bundle is fetched once per version even by `make run`).
WHITENOISE_IMMUTABLE_FILE_TEST = r"^/static/(.+\.[0-9a-f]{12}\.\w+|vendor/plotly-[0-9][\w.]*\.min\.js)$"

# --- Auth -------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGOUT_REDIRECT_URL = "login"
# Failed logins per (username, client address) before a lockout, and its length.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=15 * 60)
ANONYMOUS_USER_NAME = None  # guardian: no anonymous object permissions

# Object permissions granted on creation (see docs/permissions.md). "lab" shares
# every new object read-only with all roles, as a lab usually wants; "private"
# leaves it to its owner until someone shares it.
OBJECT_SHARING = env.str("OBJECT_SHARING", default="lab")

# --- Limits -------------------------------------------------------------------
# Largest JSON/form body the API accepts (bytes); uploads have their own limit.
API_MAX_BODY_SIZE = env.int("API_MAX_BODY_SIZE", default=10 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_SIZE
DATASET_MAX_UPLOAD_SIZE = env.int("DATASET_MAX_UPLOAD_SIZE", default=1024 * 1024 * 1024)
MODEL_MAX_UPLOAD_SIZE = env.int("MODEL_MAX_UPLOAD_SIZE", default=512 * 1024 * 1024)
# Total bytes of artifacts one run may store; an upload past it is refused.
RUN_ARTIFACT_QUOTA_BYTES = env.int("RUN_ARTIFACT_QUOTA_BYTES", default=1024 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = None

# --- REST framework -----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.core.authentication.ApiKeyAuthentication",
        "apps.core.authentication.CachedJWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "apps.core.schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "apps.core.errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": __import__("datetime").timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=30)),
    "REFRESH_TOKEN_LIFETIME": __import__("datetime").timedelta(days=env.int("JWT_REFRESH_DAYS", default=1)),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "UPDATE_LAST_LOGIN": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "TracSeq MLOps API",
    "DESCRIPTION": (
        "Machine-learning lifecycle for a sequencing laboratory: datasets with validation, "
        "experiment tracking and training jobs, a model registry with four-eyes approvals, and "
        "serving (endpoints, rollouts, predictions, feedback and live metrics). Errors are "
        '`{"error": {"code", "message", "details"}}`. Architecture: docs/architecture.md in the repository.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Path parameters state what their route matches (apps/core/schema.py does ids).
    "PREPROCESSING_HOOKS": ["apps.core.schema.add_schema_only_endpoints"],
    "PATH_CONVERTER_OVERRIDES": {"slug": {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$"}},
    # Several apps have a "status" field with their own choices; name each set.
    "ENUM_NAME_OVERRIDES": {"DriftCorrectionEnum": "apps.monitoring.choices.Correction",
                            "DeploymentStatusEnum": "apps.serving.choices.DeploymentStatus",
                            "StrategyEnum": "apps.serving.choices.Strategy",
                            "PromotionStageEnum": "apps.registry.choices.PromotionStage",
                            "PromotionRequestStatusEnum": "apps.registry.choices.RequestStatus",
                            "WebhookDeliveryStatusEnum": "apps.core.choices.DeliveryStatus",
                            "TaskTypeEnum": "apps.registry.choices.ModelTaskType",
                            "RunStatusEnum": "apps.experiments.choices.RunStatus",
                            "TrainingJobStatusEnum": "apps.experiments.choices.JobStatus",
                            "ExpectationKindEnum": "apps.datasets.choices.ExpectationKind",
                            "ExpectationSeverityEnum": "apps.datasets.choices.Severity",
                            "DriftReportStatusEnum": "apps.monitoring.choices.ReportStatus",
                            "ABTestKindEnum": "apps.abtests.choices.TestKind",
                            "ABTestEngineEnum": "apps.abtests.choices.TestEngine",
                            "ABTestCorrectionEnum": "apps.abtests.choices.TestCorrection",
                            "ABTestMetricEnum": "apps.abtests.choices.TestMetric"},
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "ApiKeyAuth": {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "`Api-Key <key>`",
            }
        }
    },
}

# --- i18n, misc ---------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Demo accounts created by `make run` (seed_demo).
DEMO_ADMIN_USERNAME = env.str("DEMO_ADMIN_USERNAME", default="admin")
DEMO_ADMIN_PASSWORD = env.str("DEMO_ADMIN_PASSWORD", default="")

# Require PostgreSQL, Redis and the browser in the test run instead of skipping.
MLOPS_CI = env.bool("MLOPS_CI", default=False)
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# Webhook deliveries (apps.core.webhooks): attempts per delivery, the first retry
# delay in seconds (doubled after each failure) and the HTTP timeout.
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=6)
WEBHOOK_RETRY_BACKOFF_SECONDS = env.float("WEBHOOK_RETRY_BACKOFF_SECONDS", default=30.0)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
# Hosts (exact names or IP literals) webhooks may reach although they are on
# loopback, private or link-local addresses; every other host must resolve to
# public addresses only (apps.core.webhooks.outbound).
WEBHOOK_ALLOWED_HOSTS = env.list("WEBHOOK_ALLOWED_HOSTS", default=[])

# Model files (apps.core.modelio) may only instantiate the exact classes the
# platform trains; this list adds exact scikit-learn estimator class names
# (e.g. "sklearn.preprocessing._polynomial.PolynomialFeatures"). Prefixes,
# functions and other module attributes are refused by a system check
# (core.E001) at startup.
MODEL_TRUSTED_TYPES = env.list("MODEL_TRUSTED_TYPES", default=[])

# Training jobs (apps.experiments): threads per training task (workers scale
# by processes), the hard time limit of one job in seconds, and how long a
# running job may go without a heartbeat before the reaper fails it.
TRAINING_QUEUE = env.str("TRAINING_QUEUE", default="training")
TRAINING_THREADS = env.int("TRAINING_THREADS", default=1)
TRAINING_TIME_LIMIT = env.int("TRAINING_TIME_LIMIT", default=60 * 60)
TRAINING_HEARTBEAT_TIMEOUT = env.int("TRAINING_HEARTBEAT_TIMEOUT", default=120)

# Notification emails (apps.core): Django's email backend, SMTP unless set.
# SITE_URL makes the links in them absolute (e.g. https://mlops.lab.example).
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="TracSeq MLOps <mlops@localhost>")
SITE_URL = env.str("SITE_URL", default="").rstrip("/")
# Alert email (apps.monitoring.alerts): at most one email per endpoint in this many seconds.
ALERT_GROUP_WINDOW_SECONDS = env.int("ALERT_GROUP_WINDOW_SECONDS", default=300)
