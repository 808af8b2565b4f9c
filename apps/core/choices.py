from django.db import models


class Role(models.TextChoices):
    """The five roles, each a Django group made by a data migration."""

    VIEWER = "Viewer", "Viewer"
    DATA_SCIENTIST = "Data Scientist", "Data Scientist"
    ML_ENGINEER = "ML Engineer", "ML Engineer"
    APPROVER = "Approver", "Approver"
    ADMIN = "Admin", "Admin"
