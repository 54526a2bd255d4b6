use sea_orm::entity::prelude::*;

use super::{ProjectId, UserId};

/// Who did what, when: sign-ups, logins, project and membership changes, refused edits.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at: i64,
    pub user_id: Option<UserId>,
    pub project_id: Option<ProjectId>,
    pub action: String,
    pub detail: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
