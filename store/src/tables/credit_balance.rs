use sea_orm::entity::prelude::*;

use super::UserId;

/// A user's credits. Invariant (checked by tests): `granted = available + reserved + settled`,
/// and neither `available` nor `reserved` is ever negative (CHECK constraints).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "credit_balances")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: UserId,
    pub available: i64,
    pub reserved: i64,
    pub settled: i64,
    pub granted: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
