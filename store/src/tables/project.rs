use sea_orm::entity::prelude::*;

use super::{ProjectId, UserId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "projects")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: ProjectId,
    /// The automerge-repo document id of the project's timeline.
    #[sea_orm(unique)]
    pub doc_id: String,
    pub name: String,
    pub created_by: UserId,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
