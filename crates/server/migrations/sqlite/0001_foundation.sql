-- Users with local (argon2id) passwords; ids are text, times are epoch seconds.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    email TEXT,
    phone TEXT,
    language TEXT,
    password_hash TEXT,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Lockout counters per normalised username, whether or not the user exists.
CREATE TABLE lockouts (
    username TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    window_start INTEGER,
    locked_until INTEGER,
    version INTEGER NOT NULL
);

-- Portal sessions: the cookie holds a random id, the store its SHA-256.
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX sessions_user_id ON sessions(user_id);
CREATE INDEX sessions_expires_at ON sessions(expires_at);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    actor TEXT NOT NULL,
    subject TEXT,
    client_ip TEXT,
    user_agent TEXT,
    detail TEXT
);
CREATE INDEX audit_log_at ON audit_log(at);

-- Settings shared by every node: one row per key, the value as JSON.
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Secrets the nodes share (the CSRF key), created once by whichever node starts first.
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- One row that /readyz writes, to prove the store accepts writes.
CREATE TABLE readiness (
    id INTEGER PRIMARY KEY,
    checked_at INTEGER NOT NULL
);
INSERT INTO readiness (id, checked_at) VALUES (1, 0);
