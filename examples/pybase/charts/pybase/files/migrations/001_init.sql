-- 001: PyBase's first tables. Every statement may run again: the init container
-- applies every file on every API pod start, each in one transaction
-- (psql --single-transaction), holding an advisory lock so that two pods starting at
-- once take turns.
SELECT pg_advisory_xact_lock(hashtext('pybase-migrations')) AS locked \gset

CREATE TABLE IF NOT EXISTS schema_migrations (
  version    text PRIMARY KEY,
  applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS workspaces (
  id         bigserial PRIMARY KEY,
  name       text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS records (
  id           bigserial PRIMARY KEY,
  workspace_id bigint NOT NULL REFERENCES workspaces (id),
  data         jsonb NOT NULL DEFAULT '{}',
  created_at   timestamptz NOT NULL DEFAULT now()
);

INSERT INTO workspaces (name) VALUES ('default') ON CONFLICT (name) DO NOTHING;
INSERT INTO schema_migrations (version) VALUES ('001_init') ON CONFLICT (version) DO NOTHING;
