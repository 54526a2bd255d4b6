use sea_orm::entity::prelude::*;

use super::ProjectId;

/// A full save of a project's document, covering every journal entry up to `upto_seq`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "doc_snapshots")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub project_id: ProjectId,
    #[sea_orm(column_type = "Blob")]
    pub data: Vec<u8>,
    pub upto_seq: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
