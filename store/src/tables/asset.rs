use sea_orm::entity::prelude::*;

use super::{AssetId, JobId, ProjectId, UserId};

/// A media file of a project: uploaded, or the result of a job. The bytes live in the media
/// folder at `path` (relative to it); the row is written only after the file is complete.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "assets")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: AssetId,
    pub project_id: ProjectId,
    /// `image`, `video` or `audio`.
    pub kind: String,
    pub mime: String,
    pub name: String,
    pub width: i32,
    pub height: i32,
    pub bytes: i64,
    /// Hex SHA-256 of the content; the same content in one project is stored once.
    pub sha256: String,
    #[serde(skip)]
    pub path: String,
    pub created_by: UserId,
    pub source_job: Option<JobId>,
    pub created_at: i64,
    /// Video and audio: length in milliseconds.
    pub duration_ms: Option<i64>,
    /// Video and audio: what the media worker's probe found (JSON).
    #[sea_orm(column_type = "Text", nullable)]
    #[serde(skip)]
    pub info: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
