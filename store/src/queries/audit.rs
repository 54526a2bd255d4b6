//! The audit log.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, QueryOrder, Set};

use crate::tables::{ProjectId, UserId, audit_log};
use crate::{Result, Store};

pub use audit_log::Model as AuditEntry;

impl Store {
    pub async fn audit(&self, now: i64, user: Option<UserId>, project: Option<ProjectId>, action: &str, detail: &str) -> Result<()> {
        audit_log::ActiveModel {
            id: NotSet,
            at: Set(now),
            user_id: Set(user),
            project_id: Set(project),
            action: Set(action.to_owned()),
            detail: Set(detail.to_owned()),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    pub async fn audit_for_project(&self, project: ProjectId) -> Result<Vec<AuditEntry>> {
        Ok(audit_log::Entity::find()
            .filter(audit_log::Column::ProjectId.eq(project))
            .order_by_asc(audit_log::Column::Id)
            .all(&self.db)
            .await?)
    }
}
