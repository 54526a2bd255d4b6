use sea_orm::entity::prelude::*;

use super::ProjectId;

/// One journal entry: the automerge changes (an incremental save) accepted in one batch.
/// `seq` increases across the whole table, so "entries after the snapshot" is `seq > upto_seq`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "doc_changes")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub project_id: ProjectId,
    #[sea_orm(column_type = "Blob")]
    pub data: Vec<u8>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
