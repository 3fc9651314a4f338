from django.db import migrations

# The role groups the navigation reads (emotions.roles), so an admin can pick them.
GROUPS = ("teachers", "researchers")


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in GROUPS:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("emotions", "0004_training_run_baselines_predictions"),
    ]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
