//! A project's timeline document: one snapshot plus a journal of incremental changes.
//!
//! Invariant: the document is `load(snapshot) + load_incremental(each entry with seq >
//! snapshot.upto_seq, in seq order)`. Appends and compactions each run in one transaction, so a
//! crash at any point leaves a loadable document that holds every committed append.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, QueryOrder, Set, TransactionTrait};

use crate::tables::{ProjectId, doc_change, doc_snapshot};
use crate::{Result, Store, StoreError};

/// What is stored for one document.
#[derive(Clone, Debug, Default)]
pub struct StoredDocument {
    pub snapshot: Vec<u8>,
    pub upto_seq: i64,
    /// Journal entries after the snapshot, as `(seq, bytes)` in order.
    pub changes: Vec<(i64, Vec<u8>)>,
}

impl StoredDocument {
    pub fn journal_bytes(&self) -> usize {
        self.changes.iter().map(|(_, c)| c.len()).sum()
    }
}

impl Store {
    /// Reads the snapshot and the journal after it in one transaction.
    pub async fn load_document(&self, project: ProjectId) -> Result<StoredDocument> {
        let txn = self.db.begin().await?;
        let snapshot = doc_snapshot::Entity::find_by_id(project)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound { what: "project document" })?;
        let changes = doc_change::Entity::find()
            .filter(doc_change::Column::ProjectId.eq(project))
            .filter(doc_change::Column::Seq.gt(snapshot.upto_seq))
            .order_by_asc(doc_change::Column::Seq)
            .all(&txn)
            .await?;
        txn.commit().await?;
        Ok(StoredDocument {
            snapshot: snapshot.data,
            upto_seq: snapshot.upto_seq,
            changes: changes.into_iter().map(|c| (c.seq, c.data)).collect(),
        })
    }

    /// Appends one journal entry and commits it. Returns its sequence number. When this returns
    /// `Ok`, the entry survives a crash.
    pub async fn append_changes(&self, project: ProjectId, data: Vec<u8>, now: i64) -> Result<i64> {
        let entry = doc_change::ActiveModel {
            seq: NotSet,
            project_id: Set(project),
            data: Set(data),
            created_at: Set(now),
        }
        .insert(&self.db)
        .await?;
        Ok(entry.seq)
    }

    /// Replaces the snapshot with `data`, which must include every journal entry up to
    /// `upto_seq`, and drops those entries, atomically.
    pub async fn compact_document(&self, project: ProjectId, data: Vec<u8>, upto_seq: i64, now: i64) -> Result<()> {
        let txn = self.begin_write().await?;
        let current = doc_snapshot::Entity::find_by_id(project)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound { what: "project document" })?;
        if current.upto_seq > upto_seq {
            // Someone compacted further already; never move the snapshot backwards.
            return Ok(());
        }
        let mut active: doc_snapshot::ActiveModel = current.into();
        active.data = Set(data);
        active.upto_seq = Set(upto_seq);
        active.updated_at = Set(now);
        active.update(&txn).await?;
        doc_change::Entity::delete_many()
            .filter(doc_change::Column::ProjectId.eq(project))
            .filter(doc_change::Column::Seq.lte(upto_seq))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }
}
