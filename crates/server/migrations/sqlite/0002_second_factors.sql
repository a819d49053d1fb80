-- Second factors: the user's chosen method, PIN, enrolment; OATH tokens; security
-- questions and answers; one-time bypasses.
ALTER TABLE users ADD COLUMN method TEXT;
ALTER TABLE users ADD COLUMN pin_hash TEXT;
ALTER TABLE users ADD COLUMN enrolled_at INTEGER;

-- Software (authenticator app) and hardware tokens. Hardware tokens are imported unassigned
-- (user_id NULL) and associated by serial. The seed is sealed (AES-256-GCM) under key_id.
CREATE TABLE oath_tokens (
    id TEXT PRIMARY KEY,
    serial TEXT UNIQUE,
    user_id TEXT REFERENCES users(id) ON DELETE SET NULL,
    kind TEXT NOT NULL,
    otp_type TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    digits INTEGER NOT NULL,
    period INTEGER NOT NULL,
    counter INTEGER NOT NULL,
    last_step INTEGER,
    drift INTEGER NOT NULL DEFAULT 0,
    secret_sealed TEXT NOT NULL,
    key_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    activated_at INTEGER,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX oath_tokens_user_id ON oath_tokens(user_id);

CREATE TABLE security_questions (
    id TEXT PRIMARY KEY,
    language TEXT NOT NULL,
    text TEXT NOT NULL,
    position INTEGER NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL
);

CREATE TABLE security_answers (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    question_id TEXT NOT NULL REFERENCES security_questions(id),
    answer_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, question_id)
);

CREATE TABLE bypasses (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    reason TEXT,
    created_by TEXT NOT NULL
);
CREATE INDEX bypasses_user_id ON bypasses(user_id);
