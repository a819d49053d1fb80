//! Hardware token imports started from the admin console: a job per uploaded file, run in the
//! background so the page can show its progress, with the same parsers as `twofold token
//! import`.
//!
//! A file with problems imports nothing, as with the CLI: every row is read and checked
//! (format, serials twice in the file, serials already in the store) before the first token is
//! written, and the report lists every refused row with its line (or key package) and reason.
//! Only then are the tokens written, in batches of [`BATCH`], each batch in one transaction,
//! so that progress can be shown. If a batch still fails (a serial imported by someone else
//! meanwhile, the database gone), the batches already written stay: the report says how many
//! tokens were imported and why the rest were not.
//!
//! The job runs on the node that received the file; if that node stops mid-way, the job stays
//! in its last state and the tokens written so far stay.

use super::{InProcessService, ServiceError};
use crate::store::{TokenImportRecord, new_id};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;
use twofold_engine::token_import::{self, ImportedToken, PskcKey};

/// Tokens written per transaction.
pub const BATCH: usize = 250;

/// One refused row of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRowError {
    /// `row 4` (a CSV file's line), `KeyPackage 2 (serial 123)`, or `file`.
    pub location: String,
    pub reason: String,
}

/// An import as the console shows it.
#[derive(Debug, Clone)]
pub struct TokenImportView {
    pub record: TokenImportRecord,
    pub errors: Vec<ImportRowError>,
}

impl TokenImportView {
    pub fn finished(&self) -> bool {
        matches!(
            self.record.state.as_str(),
            "finished" | "refused" | "failed"
        )
    }
}

impl InProcessService {
    /// Starts importing `bytes` (a PSKC or CSV file) in the background; returns the job's id.
    pub async fn start_token_import(
        self: &Arc<Self>,
        actor: &str,
        file_name: &str,
        bytes: Vec<u8>,
        key: Option<PskcKey>,
    ) -> Result<String, ServiceError> {
        let id = new_id();
        let file_name: String = file_name.chars().take(200).collect();
        self.store
            .create_token_import(&id, &file_name, actor, self.clock.now())
            .await?;
        let this = Arc::clone(self);
        let job = id.clone();
        let actor = actor.to_owned();
        tokio::spawn(async move {
            if let Err(e) = this
                .run_token_import(&job, &actor, &file_name, bytes, key)
                .await
            {
                tracing::warn!(import = %job, error = %e, "a token import stopped");
                let errors = errors_json(&[ImportRowError {
                    location: "file".into(),
                    reason: e.to_string(),
                }]);
                let _ = this
                    .store
                    .update_token_import(&job, "failed", 0, 0, &errors, this.clock.now())
                    .await;
            }
        });
        Ok(id)
    }

    async fn run_token_import(
        &self,
        id: &str,
        actor: &str,
        file_name: &str,
        bytes: Vec<u8>,
        key: Option<PskcKey>,
    ) -> Result<(), ServiceError> {
        let name = file_name.to_owned();
        let parsed = self
            .imports
            .run(move || token_import::parse_file(&name, &bytes, key.as_ref()))
            .await?;
        let tokens = match parsed {
            Ok(tokens) => tokens,
            Err(problems) => {
                let errors: Vec<ImportRowError> = problems
                    .into_iter()
                    .map(|p| ImportRowError {
                        location: p.location,
                        reason: p.reason,
                    })
                    .collect();
                return self.refuse(id, &errors).await;
            }
        };
        let known: HashSet<String> = self.store.token_serials().await?.into_iter().collect();
        let duplicates: Vec<ImportRowError> = tokens
            .iter()
            .filter(|t| known.contains(&t.serial))
            .map(|t| ImportRowError {
                location: format!("serial {}", t.serial),
                reason: "this serial is already in the store: remove the row".into(),
            })
            .collect();
        if !duplicates.is_empty() {
            return self.refuse(id, &duplicates).await;
        }
        let total = i64::try_from(tokens.len()).unwrap_or(i64::MAX);
        let mut done = 0_i64;
        self.store
            .update_token_import(id, "importing", total, 0, "[]", self.clock.now())
            .await?;
        for batch in tokens.chunks(BATCH) {
            if let Err(e) = self.import_batch(actor, batch).await {
                let errors = errors_json(&[ImportRowError {
                    location: "file".into(),
                    reason: format!("{e}; {done} of {total} tokens were imported before it"),
                }]);
                self.store
                    .update_token_import(id, "failed", total, done, &errors, self.clock.now())
                    .await?;
                return Ok(());
            }
            done += i64::try_from(batch.len()).unwrap_or(0);
            self.store
                .update_token_import(id, "importing", total, done, "[]", self.clock.now())
                .await?;
        }
        self.store
            .update_token_import(id, "finished", total, done, "[]", self.clock.now())
            .await?;
        Ok(())
    }

    async fn import_batch(&self, actor: &str, batch: &[ImportedToken]) -> Result<(), ServiceError> {
        self.import_tokens(actor, batch).await.map(|_| ())
    }

    async fn refuse(&self, id: &str, errors: &[ImportRowError]) -> Result<(), ServiceError> {
        self.store
            .update_token_import(id, "refused", 0, 0, &errors_json(errors), self.clock.now())
            .await?;
        Ok(())
    }

    /// An import started from the console; `None` when there is none by that id.
    pub async fn token_import(&self, id: &str) -> Result<Option<TokenImportView>, ServiceError> {
        Ok(self.store.token_import(id).await?.map(|record| {
            let errors = serde_json::from_str(&record.errors).unwrap_or_default();
            TokenImportView { record, errors }
        }))
    }

    /// A page of the hardware token inventory (see `Store::token_inventory`).
    pub async fn token_inventory(
        &self,
        after: &str,
        search: &str,
        limit: i64,
    ) -> Result<Vec<crate::store::InventoryToken>, ServiceError> {
        Ok(self
            .store
            .token_inventory(after, search.trim(), limit.clamp(1, 500))
            .await?)
    }
}

fn errors_json(errors: &[ImportRowError]) -> String {
    serde_json::to_string(errors).unwrap_or_else(|_| "[]".into())
}
