"""Lab sharing became reading: strip the group rights the old default gave.

Until now ``grant_on_create`` gave each role group, on every new object,
every object permission the group held as a capability, so any Data
Scientist could change any colleague's dataset, experiment, model or run.
This removes, from the role groups only, every object permission that is
neither reading (``view_*``) nor a lab duty (the names below, frozen here as
``AppConfig.lab_duties`` said when this was written). Rights named for
individual users, and rights on custom (non-role) groups, stay: those were
given on purpose. A right an owner deliberately gave a whole role group
cannot be told apart from the old default and is removed too; the owner can
give it again."""

from django.db import migrations

ROLE_GROUPS = ["Viewer", "Data Scientist", "ML Engineer", "Approver"]
LAB_DUTIES = {"approve_registeredmodel", "rollback_registeredmodel", "predict_endpoint"}


def strip_group_write_rights(apps, schema_editor):
    GroupObjectPermission = apps.get_model("guardian", "GroupObjectPermission")
    rows = (GroupObjectPermission.objects.filter(group__name__in=ROLE_GROUPS)
            .exclude(permission__codename__startswith="view_")
            .exclude(permission__codename__in=LAB_DUTIES))
    # Deleted by primary key: a join in a DELETE is not portable.
    GroupObjectPermission.objects.filter(pk__in=list(rows.values_list("pk", flat=True))).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0003_audit_append_only"),
        ("guardian", "0003_remove_groupobjectpermission_guardian_gr_content_ae6aec_idx_and_more"),
    ]
    # Not reversible in substance: the old rights are not recorded anywhere.
    operations = [migrations.RunPython(strip_group_write_rights, migrations.RunPython.noop)]
