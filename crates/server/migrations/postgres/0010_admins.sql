-- Administrators of the admin console. An administrator is a user (they sign in like one,
-- with a second factor always); their rights are grants, each a permission for all users
-- ('all') or for the members of one group ('group:NAME'). A bypass maximum of NULL is the
-- settings' own. Groups are local: a user belongs to any number of them.
CREATE TABLE admins (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    bypass_max_seconds BIGINT,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
);

CREATE TABLE admin_grants (
    user_id TEXT NOT NULL REFERENCES admins(user_id) ON DELETE CASCADE,
    permission TEXT NOT NULL,
    scope TEXT NOT NULL,
    PRIMARY KEY (user_id, permission, scope)
);

CREATE TABLE user_groups (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    group_name TEXT NOT NULL,
    PRIMARY KEY (user_id, group_name)
);
CREATE INDEX user_groups_group ON user_groups(group_name);

-- The one-time link that makes the first administrator (kept as a SHA-256 only).
CREATE TABLE admin_bootstrap (
    token_hash TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
