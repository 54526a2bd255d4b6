//! Projects and memberships.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, QueryOrder, Set};

use crate::tables::{ProjectId, Role, UserId, doc_snapshot, membership, project};
use crate::{Membership, Project, Result, Store, StoreError, conflict_or};

/// A project as one member sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectWithRole {
    pub project: Project,
    pub role: Role,
}

impl Store {
    /// Creates a project owned by `owner`, with its initial timeline document, in one
    /// transaction: there is never a project without a document or an owner.
    pub async fn create_project(&self, owner: UserId, name: &str, doc_id: &str, initial_doc: Vec<u8>, now: i64) -> Result<Project> {
        let txn = self.begin_write().await?;
        let project = project::ActiveModel {
            id: NotSet,
            doc_id: Set(doc_id.to_owned()),
            name: Set(name.to_owned()),
            created_by: Set(owner),
            created_at: Set(now),
        }
        .insert(&txn)
        .await
        .map_err(|e| conflict_or(e, "a project with this document id"))?;
        membership::ActiveModel {
            project_id: Set(project.id),
            user_id: Set(owner),
            role: Set(Role::Owner),
            created_at: Set(now),
        }
        .insert(&txn)
        .await?;
        doc_snapshot::ActiveModel {
            project_id: Set(project.id),
            data: Set(initial_doc),
            upto_seq: Set(0),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(project)
    }

    pub async fn project_by_id(&self, id: ProjectId) -> Result<Option<Project>> {
        Ok(project::Entity::find_by_id(id).one(&self.db).await?)
    }

    /// Projects with exactly this name (names need not be unique).
    pub async fn projects_named(&self, name: &str) -> Result<Vec<Project>> {
        Ok(project::Entity::find().filter(project::Column::Name.eq(name)).all(&self.db).await?)
    }

    pub async fn project_by_doc_id(&self, doc_id: &str) -> Result<Option<Project>> {
        Ok(project::Entity::find()
            .filter(project::Column::DocId.eq(doc_id))
            .one(&self.db)
            .await?)
    }

    /// Every project `user` is a member of, newest first.
    pub async fn projects_of(&self, user: UserId) -> Result<Vec<ProjectWithRole>> {
        let members = membership::Entity::find()
            .filter(membership::Column::UserId.eq(user))
            .all(&self.db)
            .await?;
        let ids: Vec<ProjectId> = members.iter().map(|m| m.project_id).collect();
        let projects = project::Entity::find()
            .filter(project::Column::Id.is_in(ids))
            .order_by_desc(project::Column::Id)
            .all(&self.db)
            .await?;
        Ok(projects
            .into_iter()
            .filter_map(|project| {
                let role = members.iter().find(|m| m.project_id == project.id)?.role;
                Some(ProjectWithRole { project, role })
            })
            .collect())
    }

    pub async fn rename_project(&self, id: ProjectId, name: &str) -> Result<Project> {
        let project = self.project_by_id(id).await?.ok_or(StoreError::NotFound { what: "project" })?;
        let mut active: project::ActiveModel = project.into();
        active.name = Set(name.to_owned());
        Ok(active.update(&self.db).await?)
    }

    /// Deletes a project with its memberships, document and journal.
    pub async fn delete_project(&self, id: ProjectId) -> Result<()> {
        let res = project::Entity::delete_by_id(id).exec(&self.db).await?;
        if res.rows_affected == 0 {
            return Err(StoreError::NotFound { what: "project" });
        }
        Ok(())
    }

    pub async fn role_of(&self, project: ProjectId, user: UserId) -> Result<Option<Role>> {
        Ok(membership::Entity::find_by_id((project, user)).one(&self.db).await?.map(|m| m.role))
    }

    pub async fn members(&self, project: ProjectId) -> Result<Vec<Membership>> {
        Ok(membership::Entity::find()
            .filter(membership::Column::ProjectId.eq(project))
            .order_by_asc(membership::Column::CreatedAt)
            .all(&self.db)
            .await?)
    }

    pub async fn add_member(&self, project: ProjectId, user: UserId, role: Role, now: i64) -> Result<Membership> {
        membership::ActiveModel {
            project_id: Set(project),
            user_id: Set(user),
            role: Set(role),
            created_at: Set(now),
        }
        .insert(&self.db)
        .await
        .map_err(|e| conflict_or(e, "this membership"))
    }

    pub async fn set_role(&self, project: ProjectId, user: UserId, role: Role) -> Result<Membership> {
        let member = membership::Entity::find_by_id((project, user))
            .one(&self.db)
            .await?
            .ok_or(StoreError::NotFound { what: "membership" })?;
        let mut active: membership::ActiveModel = member.into();
        active.role = Set(role);
        Ok(active.update(&self.db).await?)
    }

    pub async fn remove_member(&self, project: ProjectId, user: UserId) -> Result<()> {
        let res = membership::Entity::delete_by_id((project, user)).exec(&self.db).await?;
        if res.rows_affected == 0 {
            return Err(StoreError::NotFound { what: "membership" });
        }
        Ok(())
    }

    pub async fn count_owners(&self, project: ProjectId) -> Result<usize> {
        Ok(self.members(project).await?.iter().filter(|m| m.role == Role::Owner).count())
    }
}
