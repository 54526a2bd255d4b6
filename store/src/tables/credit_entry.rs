use sea_orm::entity::prelude::*;

use super::{JobId, UserId};

/// One line of the credit ledger. Kinds: `grant` (amount added), `reserve` (amount held for a
/// job), `release` (the job's reservation closed: `charged` settled, `amount` refunded). A
/// unique index on `(job_id, kind)` makes reserve and release happen at most once per job.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "credit_entries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: UserId,
    pub job_id: Option<JobId>,
    pub kind: String,
    pub amount: i64,
    pub charged: i64,
    pub note: String,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
