use sea_orm::entity::prelude::*;

use super::UserId;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: UserId,
    #[sea_orm(unique)]
    pub email: String,
    pub display_name: String,
    /// PHC string (argon2id).
    pub password_hash: String,
    pub is_admin: bool,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// Jobs estimated above this many credits need an explicit confirmation; `None`: never.
    pub confirm_above_credits: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
