"""Demo accounts: one per role, so a new user can try every part of the
workflow (four-eyes approval needs two people)."""

from django.db import transaction

from apps.core.choices import Role
from apps.core.services import user_ensure

DEMO_USERS = [
    ("scientist", [Role.DATA_SCIENTIST], "Lab data scientist: uploads data, trains models"),
    ("engineer", [Role.ML_ENGINEER], "ML engineer: registers, deploys, runs canaries"),
    ("qa", [Role.APPROVER], "QA manager: approves promotions"),
    ("viewer", [Role.VIEWER], "Read-only"),
]


def seed(context: dict, *, password: str, stdout=None) -> None:
    users = {}
    with transaction.atomic():
        for username, roles, _ in DEMO_USERS:
            users[username], _ = user_ensure(username=username, password=password, roles=roles)
    context["users"] = users
    if stdout:
        for username, roles, what in DEMO_USERS:
            stdout.write(f"  {username:10s} {', '.join(roles):16s} {what}")
