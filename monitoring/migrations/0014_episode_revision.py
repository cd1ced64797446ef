# Issue 18: a revision counter per episode, advanced by the database on every change that the
# therapist's pages show, so that they can cache what they render (monitoring.models.EpisodeRevision).
from django.db import migrations, models

# The tables whose rows a page shows, and how a row finds its episode.
TOUCHED_BY = {
    "clinics_session": "episode",
    "monitoring_flag": "episode",
    "monitoring_safetyalert": "episode",
    "monitoring_episodeanalysis": "episode",
    "monitoring_response": "session",
    "monitoring_invitation": "session",
    "monitoring_patientmessage": "session",
    "clinics_appointmentschedule": "patient",
}
EVENTS = ("INSERT", "UPDATE", "DELETE")
REVISION = "monitoring_episoderevision"

# PostgreSQL: one statement-level trigger per table and event, reading the changed rows as a
# transition table, so a bulk insert of many answers moves each episode's counter once.
PG_WHERE = {
    "episode": "episode_id IN (SELECT episode_id FROM changed)",
    "session": (
        "episode_id IN (SELECT s.episode_id FROM clinics_session s WHERE s.id IN (SELECT session_id FROM changed))"
    ),
    "patient": (
        "episode_id IN (SELECT e.id FROM clinics_episode e WHERE e.patient_id IN (SELECT patient_id FROM changed))"
    ),
}
# The counters are locked in the order of their episode, so that two statements moving
# overlapping sets of episodes (two imports, say) wait for each other instead of deadlocking.
PG_UP = (
    [
        f"""CREATE OR REPLACE FUNCTION bordin_revision_by_{shape}() RETURNS trigger AS $$
    BEGIN
        UPDATE {REVISION} AS r SET revision = r.revision + 1
        FROM (SELECT episode_id FROM {REVISION} WHERE {where} ORDER BY episode_id FOR UPDATE) AS locked
        WHERE r.episode_id = locked.episode_id;
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql"""
        for shape, where in PG_WHERE.items()
    ]
    + [
        f"""CREATE OR REPLACE FUNCTION bordin_revision_create() RETURNS trigger AS $$
    BEGIN
        INSERT INTO {REVISION} (episode_id, revision) SELECT id, 0 FROM changed;
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql""",
        """CREATE TRIGGER bordin_revision_clinics_episode_insert AFTER INSERT ON clinics_episode
        REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bordin_revision_create()""",
    ]
    + [
        f"""CREATE TRIGGER bordin_revision_{table}_{event.lower()} AFTER {event} ON {table}
        REFERENCING {"OLD" if event == "DELETE" else "NEW"} TABLE AS changed
        FOR EACH STATEMENT EXECUTE FUNCTION bordin_revision_by_{shape}()"""
        for table, shape in TOUCHED_BY.items()
        for event in EVENTS
    ]
)
PG_DOWN = [
    f"DROP TRIGGER IF EXISTS bordin_revision_{table}_{event.lower()} ON {table}"
    for table in TOUCHED_BY
    for event in EVENTS
] + [
    "DROP TRIGGER IF EXISTS bordin_revision_clinics_episode_insert ON clinics_episode",
    "DROP FUNCTION IF EXISTS bordin_revision_create()",
    *(f"DROP FUNCTION IF EXISTS bordin_revision_by_{shape}()" for shape in PG_WHERE),
]

# SQLite: row-level triggers (it has no statement-level ones).
SQLITE_WHERE = {
    "episode": "episode_id = {row}.episode_id",
    "session": "episode_id = (SELECT episode_id FROM clinics_session WHERE id = {row}.session_id)",
    "patient": "episode_id IN (SELECT id FROM clinics_episode WHERE patient_id = {row}.patient_id)",
}
SQLITE_UP = [
    f"""CREATE TRIGGER bordin_revision_clinics_episode_insert AFTER INSERT ON clinics_episode
    BEGIN
        INSERT INTO {REVISION} (episode_id, revision) VALUES (NEW.id, 0);
    END""",
] + [
    f"""CREATE TRIGGER bordin_revision_{table}_{event.lower()} AFTER {event} ON {table}
    BEGIN
        UPDATE {REVISION} SET revision = revision + 1
        WHERE {SQLITE_WHERE[shape].format(row="OLD" if event == "DELETE" else "NEW")};
    END"""
    for table, shape in TOUCHED_BY.items()
    for event in EVENTS
]
SQLITE_DOWN = ["DROP TRIGGER IF EXISTS bordin_revision_clinics_episode_insert"] + [
    f"DROP TRIGGER IF EXISTS bordin_revision_{table}_{event.lower()}"
    for table in TOUCHED_BY
    for event in EVENTS
]
STATEMENTS = {"postgresql": (PG_UP, PG_DOWN), "sqlite": (SQLITE_UP, SQLITE_DOWN)}


def forwards(apps, schema_editor):
    # Counters only where triggers keep them: elsewhere no episode has one, and pages are not
    # cached (monitoring.care.rows, monitoring.care.patient_page).
    if schema_editor.connection.vendor not in STATEMENTS:
        return
    schema_editor.execute(f"INSERT INTO {REVISION} (episode_id, revision) SELECT id, 0 FROM clinics_episode")
    for statement in STATEMENTS[schema_editor.connection.vendor][0]:
        schema_editor.execute(statement, params=None)


def backwards(apps, schema_editor):
    for statement in STATEMENTS.get(schema_editor.connection.vendor, ([], []))[1]:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("clinics", "0009_recurring_appointments"),
        ("monitoring", "0013_perspective_gap"),
    ]

    operations = [
        migrations.CreateModel(
            name="EpisodeRevision",
            fields=[
                (
                    "episode",
                    models.OneToOneField(
                        on_delete=models.deletion.CASCADE,
                        primary_key=True,
                        related_name="revision_counter",
                        serialize=False,
                        to="clinics.episode",
                    ),
                ),
                ("revision", models.PositiveBigIntegerField(default=0)),
            ],
        ),
        migrations.RunPython(forwards, backwards),
    ]
