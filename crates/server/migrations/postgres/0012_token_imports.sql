-- Hardware token imports started from the admin console: a job per uploaded file, run in the
-- background in batches so the page can show its progress. `state` is 'checking' (the file is
-- read and every row checked), 'importing' (tokens written, `done` of `total`), 'finished'
-- (`done` tokens imported) or 'refused' (nothing imported; `errors` says why, per row).
-- `errors` is a JSON array of {"location": "row 4", "reason": "..."}.
CREATE TABLE token_imports (
    id TEXT PRIMARY KEY,
    file_name TEXT NOT NULL,
    state TEXT NOT NULL,
    total BIGINT NOT NULL DEFAULT 0,
    done BIGINT NOT NULL DEFAULT 0,
    errors TEXT NOT NULL DEFAULT '[]',
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX token_imports_created ON token_imports (created_at);
