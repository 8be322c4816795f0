"""items and events reference their declaration through a check per statement, on PostgreSQL

Revision ID: clearance_0003
Revises: clearance_0002
Create Date: 2026-11-24 08:00:00

A foreign key checks each inserted row with its own query (an executor run per row): 5.7 us per item and
per event row, a quarter of the database server's CPU per filing in batch ingest (pg_stat_statements, in the
issue 2 note). These triggers keep the same guarantee with one query per statement:

- rows inserted into (or updated in) `clearance_item` and `clearance_event` must name an existing
  declaration; the declarations they name are locked `FOR KEY SHARE`, as a foreign key's check locks them,
  so a declaration cannot be deleted while a transaction adds rows that point to it;
- a declaration that items or events point to cannot be deleted, nor its id changed.

A violation raises SQLSTATE 23503 (foreign_key_violation), as the constraint did. SQLite keeps its foreign
keys (its per-row check is cheap). Versions and inspections, written once per amendment or inspection,
keep theirs.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "clearance_0003"
down_revision: str | Sequence[str] | None = "clearance_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHILDREN = ("clearance_item", "clearance_event")

CHECK_REFS = """
CREATE FUNCTION clearance_check_declaration_refs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wanted bigint[];
    found bigint;
    missing bigint;
BEGIN
    wanted := ARRAY(SELECT DISTINCT declaration_id FROM new_rows);
    SELECT count(*) INTO found
      FROM (SELECT 1 FROM clearance_declaration d WHERE d.id = ANY (wanted) FOR KEY SHARE OF d) AS locked;
    IF found < cardinality(wanted) THEN
        SELECT min(w) INTO missing FROM unnest(wanted) AS w
         WHERE NOT EXISTS (SELECT 1 FROM clearance_declaration d WHERE d.id = w);
        RAISE EXCEPTION 'insert or update on table "%" violates foreign key "%_declaration_id"', TG_TABLE_NAME, TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (declaration_id)=(%s) is not present in table "clearance_declaration".', missing),
                  TABLE = TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END $$
"""

REFUSE_DELETE = """
CREATE FUNCTION clearance_refuse_referenced_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    referenced bigint;
BEGIN
    SELECT min(o.id) INTO referenced FROM old_rows o
     WHERE EXISTS (SELECT 1 FROM clearance_item i WHERE i.declaration_id = o.id)
        OR EXISTS (SELECT 1 FROM clearance_event e WHERE e.declaration_id = o.id);
    IF referenced IS NOT NULL THEN
        RAISE EXCEPTION 'delete on table "clearance_declaration" violates a foreign key of its items or events'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (id)=(%s) is still referenced.', referenced),
                  TABLE = 'clearance_declaration';
    END IF;
    RETURN NULL;
END $$
"""

REFUSE_NEW_ID = """
CREATE FUNCTION clearance_refuse_new_declaration_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a declaration''s id never changes: items and events refer to it'
        USING ERRCODE = 'foreign_key_violation', TABLE = 'clearance_declaration';
END $$
"""


def _fk(child: str) -> str:
    return f"fk_{child}_declaration_id_clearance_declaration"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(CHECK_REFS)
    op.execute(REFUSE_DELETE)
    op.execute(REFUSE_NEW_ID)
    for child in CHILDREN:
        op.drop_constraint(_fk(child), child, type_="foreignkey")
        for event in ("INSERT", "UPDATE"):
            op.execute(
                f"CREATE TRIGGER {child}_declaration_ref_{event.lower()} AFTER {event} ON {child} "
                "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
                "EXECUTE FUNCTION clearance_check_declaration_refs()"
            )
    op.execute(
        "CREATE TRIGGER clearance_declaration_referenced_delete AFTER DELETE ON clearance_declaration "
        "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION clearance_refuse_referenced_delete()"
    )
    op.execute(
        "CREATE TRIGGER clearance_declaration_id_kept BEFORE UPDATE OF id ON clearance_declaration FOR EACH ROW "
        "WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION clearance_refuse_new_declaration_id()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER clearance_declaration_id_kept ON clearance_declaration")
    op.execute("DROP TRIGGER clearance_declaration_referenced_delete ON clearance_declaration")
    for child in CHILDREN:
        for event in ("insert", "update"):
            op.execute(f"DROP TRIGGER {child}_declaration_ref_{event} ON {child}")
        op.create_foreign_key(_fk(child), child, "clearance_declaration", ["declaration_id"], ["id"])
    op.execute("DROP FUNCTION clearance_refuse_new_declaration_id()")
    op.execute("DROP FUNCTION clearance_refuse_referenced_delete()")
    op.execute("DROP FUNCTION clearance_check_declaration_refs()")
