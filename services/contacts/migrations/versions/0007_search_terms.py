"""Search by term: a per-tenant dictionary of distinct words with a trigram index, and
which contact holds which word, kept by a trigger on `contacts`; backfilled.

A search looks the query's words up in the dictionary (each name spelled once however
many contacts carry it, so a typo finds its few close words cheaply), then walks the
contacts holding those words newest first, instead of scoring every contact the trigram
index on `contacts.search_text` lets through (issue 16).

The trigger keeps both tables in the transaction of every write to `contacts.search_text`
— create, update, merge, erasure, relocation, imports, COPY — and drops a dictionary word
when its last holder goes, so an erased person's email or phone leaves no term behind.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 21:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TERMS_OF = """
CREATE OR REPLACE FUNCTION contact_search_terms(document text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT word ORDER BY word), '{}')
    FROM regexp_split_to_table(coalesce(document, ''), ' ') AS word
    WHERE word <> ''
$$
"""

# Words are added in sorted order (two writers taking the same new words wait for each
# other instead of deadlocking). A dictionary word whose last holder went is deleted;
# when a concurrent writer has just taken it (the foreign key says so), it stays.
SYNC = """
CREATE OR REPLACE FUNCTION contact_terms_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    old_terms text[] := '{}';
    new_terms text[] := '{}';
    gone text[];
    added text[];
    gone_term text;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        old_terms := contact_search_terms(OLD.search_text);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        new_terms := contact_search_terms(NEW.search_text);
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.tenant_id IS DISTINCT FROM NEW.tenant_id THEN
        gone := old_terms;
        added := new_terms;
    ELSE
        gone := ARRAY(SELECT unnest(old_terms) EXCEPT SELECT unnest(new_terms));
        added := ARRAY(SELECT unnest(new_terms) EXCEPT SELECT unnest(old_terms) ORDER BY 1);
    END IF;
    IF cardinality(gone) > 0 THEN
        DELETE FROM contact_terms WHERE contact_id = OLD.id AND term = ANY (gone);
        FOREACH gone_term IN ARRAY gone LOOP
            BEGIN
                DELETE FROM search_terms AS s
                WHERE s.tenant_id = OLD.tenant_id AND s.term = gone_term
                  AND NOT EXISTS (
                      SELECT 1 FROM contact_terms AS c
                      WHERE c.tenant_id = s.tenant_id AND c.term = s.term
                  );
            EXCEPTION WHEN foreign_key_violation THEN
                NULL;  -- taken meanwhile by another contact: it stays
            END;
        END LOOP;
    END IF;
    IF cardinality(added) > 0 THEN
        INSERT INTO search_terms (tenant_id, term)
        SELECT NEW.tenant_id, a.term FROM unnest(added) AS a (term) ORDER BY 2
        ON CONFLICT DO NOTHING;
        INSERT INTO contact_terms (contact_id, term, tenant_id)
        SELECT NEW.id, a.term, NEW.tenant_id FROM unnest(added) AS a (term);
    END IF;
    RETURN NULL;
END
$$
"""

TRIGGER = """
CREATE TRIGGER contacts_search_terms
AFTER INSERT OR DELETE OR UPDATE OF search_text, tenant_id ON contacts
FOR EACH ROW EXECUTE FUNCTION contact_terms_sync()
"""

# Rebuilds both tables from `contacts` in a few set-based statements (the migration's
# backfill; the bench calls it after a COPY with the trigger disabled). Indexes and the
# foreign key are rebuilt afterwards, which is much faster than row by row.
REBUILD = """
CREATE OR REPLACE FUNCTION contact_terms_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    ALTER TABLE contact_terms DROP CONSTRAINT fk_contact_terms_tenant_id_search_terms;
    DROP INDEX ix_contact_terms_tenant_id_term_contact_id;
    DROP INDEX ix_search_terms_term;
    TRUNCATE contact_terms, search_terms;
    INSERT INTO contact_terms (contact_id, term, tenant_id)
    SELECT c.id, word, c.tenant_id
    FROM contacts AS c, unnest(contact_search_terms(c.search_text)) AS word;
    INSERT INTO search_terms (tenant_id, term)
    SELECT DISTINCT tenant_id, term FROM contact_terms;
    CREATE INDEX ix_contact_terms_tenant_id_term_contact_id
        ON contact_terms (tenant_id, term, contact_id);
    CREATE INDEX ix_search_terms_term ON search_terms USING gin (term gin_trgm_ops);
    ALTER TABLE contact_terms ADD CONSTRAINT fk_contact_terms_tenant_id_search_terms
        FOREIGN KEY (tenant_id, term) REFERENCES search_terms (tenant_id, term);
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "search_terms",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("term", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "term", name=op.f("pk_search_terms")),
    )
    op.create_index(
        "ix_search_terms_term",
        "search_terms",
        ["term"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"term": "gin_trgm_ops"},
    )
    op.create_table(
        "contact_terms",
        sa.Column("contact_id", sa.Text(), nullable=False),
        sa.Column("term", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "term"],
            ["search_terms.tenant_id", "search_terms.term"],
            name="fk_contact_terms_tenant_id_search_terms",
        ),
        sa.PrimaryKeyConstraint("contact_id", "term", name=op.f("pk_contact_terms")),
    )
    op.create_index(
        "ix_contact_terms_tenant_id_term_contact_id",
        "contact_terms",
        ["tenant_id", "term", "contact_id"],
        unique=False,
    )
    op.execute(TERMS_OF)
    op.execute(SYNC)
    op.execute(REBUILD)
    op.execute("SELECT contact_terms_rebuild()")
    op.execute(TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER contacts_search_terms ON contacts")
    op.execute("DROP FUNCTION contact_terms_rebuild()")
    op.execute("DROP FUNCTION contact_terms_sync()")
    op.execute("DROP FUNCTION contact_search_terms(text)")
    op.drop_index("ix_contact_terms_tenant_id_term_contact_id", table_name="contact_terms")
    op.drop_table("contact_terms")
    op.drop_index("ix_search_terms_term", table_name="search_terms")
    op.drop_table("search_terms")
