-- Users from a directory or a file: where each came from (local, ldap, csv, radius), the
-- directory's own id for them (which survives a rename), when a sync last found them gone,
-- and their invitation to the portal: due (an import queued it) and when it was sent.
ALTER TABLE users ADD COLUMN mobile_phone TEXT;
ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local';
ALTER TABLE users ADD COLUMN external_id TEXT;
ALTER TABLE users ADD COLUMN left_directory_at INTEGER;
ALTER TABLE users ADD COLUMN invited_at INTEGER;
ALTER TABLE users ADD COLUMN invitation_due INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX users_external_id ON users(external_id) WHERE external_id IS NOT NULL;
CREATE INDEX users_source ON users(source);
CREATE INDEX users_invitation_due ON users(invitation_due) WHERE invitation_due = 1;

-- Jobs that one node at a time runs (the directory sync): a node takes the lease while it is
-- free or expired, and releases it when done.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
