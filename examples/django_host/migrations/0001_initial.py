from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [("oauth2_provider", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="SignInClaims",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("amr", models.JSONField()),
                ("acr", models.CharField(max_length=200)),
                ("auth_time", models.IntegerField()),
                (
                    "grant",
                    models.OneToOneField(
                        on_delete=models.deletion.CASCADE,
                        related_name="sign_in",
                        to="oauth2_provider.grant",
                    ),
                ),
            ],
        ),
    ]
