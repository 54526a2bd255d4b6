use sea_orm::entity::prelude::*;

use super::{AssetId, JobId, JobState, ProjectId, UserId};

/// One job, persisted at every state transition.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: JobId,
    pub project_id: ProjectId,
    pub user_id: UserId,
    pub kind: String,
    /// The validated parameters, as JSON.
    #[sea_orm(column_type = "Text")]
    pub params: String,
    pub input_asset: Option<AssetId>,
    pub state: JobState,
    /// Higher runs first.
    pub priority: i32,
    pub idempotency_key: Option<String>,
    pub estimate_credits: i64,
    pub actual_credits: Option<i64>,
    pub estimate_ms: i64,
    /// How many times it was started (a crash while running re-queues it).
    pub attempts: i32,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub result_asset: Option<AssetId>,
    pub device: Option<String>,
    /// The placeholder clip on the project's timeline that shows this job, if any.
    pub timeline_clip: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
