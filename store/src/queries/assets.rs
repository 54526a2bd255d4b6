//! Assets: media files of a project.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, QueryOrder, Set};

use crate::tables::{AssetId, JobId, ProjectId, UserId, asset};
use crate::{Result, Store};

pub use asset::Model as Asset;

/// What the caller knows about a new asset whose file is already complete on disk.
#[derive(Clone, Debug)]
pub struct NewAsset {
    pub project: ProjectId,
    pub kind: String,
    pub mime: String,
    pub name: String,
    pub width: i32,
    pub height: i32,
    pub bytes: i64,
    pub sha256: String,
    pub path: String,
    pub created_by: UserId,
    pub source_job: Option<JobId>,
    pub duration_ms: Option<i64>,
    pub info: Option<String>,
}

impl Store {
    /// Records an asset. The same content (by SHA-256) in the same project is stored once: the
    /// existing asset is returned with `false`.
    pub async fn insert_asset(&self, new: NewAsset, now: i64) -> Result<(Asset, bool)> {
        if new.source_job.is_none() {
            if let Some(existing) = asset::Entity::find()
                .filter(asset::Column::ProjectId.eq(new.project))
                .filter(asset::Column::Sha256.eq(new.sha256.as_str()))
                .one(&self.db)
                .await?
            {
                return Ok((existing, false));
            }
        }
        let model = asset::ActiveModel {
            id: NotSet,
            project_id: Set(new.project),
            kind: Set(new.kind),
            mime: Set(new.mime),
            name: Set(new.name),
            width: Set(new.width),
            height: Set(new.height),
            bytes: Set(new.bytes),
            sha256: Set(new.sha256),
            path: Set(new.path),
            created_by: Set(new.created_by),
            source_job: Set(new.source_job),
            created_at: Set(now),
            duration_ms: Set(new.duration_ms),
            info: Set(new.info),
        }
        .insert(&self.db)
        .await?;
        Ok((model, true))
    }

    pub async fn asset(&self, id: AssetId) -> Result<Option<Asset>> {
        Ok(asset::Entity::find_by_id(id).one(&self.db).await?)
    }

    /// The result asset a job already produced (so a retried job does not store it twice).
    pub async fn asset_of_job(&self, job: JobId) -> Result<Option<Asset>> {
        Ok(asset::Entity::find().filter(asset::Column::SourceJob.eq(job)).one(&self.db).await?)
    }

    pub async fn assets_of(&self, project: ProjectId) -> Result<Vec<Asset>> {
        Ok(asset::Entity::find()
            .filter(asset::Column::ProjectId.eq(project))
            .order_by_asc(asset::Column::Id)
            .all(&self.db)
            .await?)
    }
}
