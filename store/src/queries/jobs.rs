//! Jobs and their transitions. Each transition is one conditional UPDATE (so two actors can
//! never both move the same job), and the final one closes the job's credit reservation in the
//! same transaction: a job is settled or refunded exactly once.

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, NotSet, PaginatorTrait, QueryFilter, QueryOrder, Set};

use crate::queries::credits;
use crate::tables::{AssetId, JobId, JobState, ProjectId, UserId, job};
use crate::{Result, Store, StoreError};

pub use job::Model as Job;

/// A job as submitted, after validation and estimation.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub project: ProjectId,
    pub user: UserId,
    pub kind: String,
    pub params: String,
    pub input_asset: Option<AssetId>,
    pub priority: i32,
    pub idempotency_key: Option<String>,
    pub estimate_credits: i64,
    pub estimate_ms: i64,
    pub timeline_clip: Option<String>,
}

/// How a job ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    Succeeded {
        actual_credits: i64,
        result_asset: Option<AssetId>,
    },
    Failed {
        reason: String,
    },
    Cancelled {
        reason: String,
    },
}

impl Store {
    /// Queues a job and reserves its estimate, in one transaction. With an idempotency key
    /// already used by this user, returns that job (and `false`) and reserves nothing.
    pub async fn submit_job(&self, new: NewJob, now: i64) -> Result<(Job, bool)> {
        if let Some(existing) = self.job_by_key(new.user, new.idempotency_key.as_deref()).await? {
            return Ok((existing, false));
        }
        let txn = self.begin_write().await?;
        credits::reserve(&txn, new.user, new.estimate_credits).await?;
        let inserted = job::Entity::insert(job::ActiveModel {
            id: NotSet,
            project_id: Set(new.project),
            user_id: Set(new.user),
            kind: Set(new.kind.clone()),
            params: Set(new.params.clone()),
            input_asset: Set(new.input_asset),
            state: Set(JobState::Queued),
            priority: Set(new.priority),
            idempotency_key: Set(new.idempotency_key.clone()),
            estimate_credits: Set(new.estimate_credits),
            actual_credits: Set(None),
            estimate_ms: Set(new.estimate_ms),
            attempts: Set(0),
            error: Set(None),
            result_asset: Set(None),
            device: Set(None),
            timeline_clip: Set(new.timeline_clip.clone()),
            created_at: Set(now),
            started_at: Set(None),
            finished_at: Set(None),
        })
        .exec(&txn)
        .await;
        let id = match inserted {
            Ok(res) => JobId(res.last_insert_id.0),
            Err(err) => {
                drop(txn);
                // A concurrent submit with the same key won the race: answer with its job.
                if let StoreError::Conflict { .. } = crate::conflict_or(err.clone(), "job") {
                    if let Some(existing) = self.job_by_key(new.user, new.idempotency_key.as_deref()).await? {
                        return Ok((existing, false));
                    }
                }
                return Err(err.into());
            }
        };
        let note = format!("reserved for job {id} ({})", new.kind);
        credits::entry(&txn, new.user, Some(id), "reserve", new.estimate_credits, 0, &note, now).await?;
        let job = job::Entity::find_by_id(id).one(&txn).await?.expect("job just inserted");
        txn.commit().await?;
        Ok((job, true))
    }

    /// The job this user submitted with this idempotency key, if any.
    pub async fn job_by_key(&self, user: UserId, key: Option<&str>) -> Result<Option<Job>> {
        let Some(key) = key else { return Ok(None) };
        Ok(job::Entity::find()
            .filter(job::Column::UserId.eq(user))
            .filter(job::Column::IdempotencyKey.eq(key))
            .one(&self.db)
            .await?)
    }

    pub async fn job(&self, id: JobId) -> Result<Option<Job>> {
        Ok(job::Entity::find_by_id(id).one(&self.db).await?)
    }

    /// Jobs of a project, newest first, optionally in one state.
    pub async fn jobs_of(&self, project: ProjectId, state: Option<JobState>) -> Result<Vec<Job>> {
        let mut q = job::Entity::find().filter(job::Column::ProjectId.eq(project));
        if let Some(state) = state {
            q = q.filter(job::Column::State.eq(state));
        }
        Ok(q.order_by_desc(job::Column::Id).all(&self.db).await?)
    }

    /// Queued and running jobs, oldest first (what the supervisor loads at start).
    pub async fn live_jobs(&self) -> Result<Vec<Job>> {
        Ok(job::Entity::find()
            .filter(job::Column::State.is_in([JobState::Queued, JobState::Running]))
            .order_by_asc(job::Column::Id)
            .all(&self.db)
            .await?)
    }

    /// Number of a user's queued or running jobs (for the quota).
    pub async fn live_job_count(&self, user: UserId) -> Result<u64> {
        Ok(job::Entity::find()
            .filter(job::Column::UserId.eq(user))
            .filter(job::Column::State.is_in([JobState::Queued, JobState::Running]))
            .count(&self.db)
            .await?)
    }

    /// queued → running. `None` when the job is not queued any more (cancelled meanwhile).
    pub async fn start_job(&self, id: JobId, device: &str, now: i64) -> Result<Option<Job>> {
        let update = job::Entity::update_many()
            .col_expr(job::Column::State, Expr::value(JobState::Running.as_str()))
            .col_expr(job::Column::Attempts, Expr::col(job::Column::Attempts).add(1))
            .col_expr(job::Column::StartedAt, Expr::value(now))
            .col_expr(job::Column::Device, Expr::value(device));
        self.update_queued(id, update).await
    }

    /// Runs `update` on the job only while it is queued; the job after it, or `None` when it
    /// was not queued (so nothing changed).
    async fn update_queued(&self, id: JobId, update: sea_orm::UpdateMany<job::Entity>) -> Result<Option<Job>> {
        let res = update
            .filter(job::Column::Id.eq(id))
            .filter(job::Column::State.eq(JobState::Queued))
            .exec(&self.db)
            .await?;
        if res.rows_affected == 0 {
            return Ok(None);
        }
        self.job(id).await
    }

    /// Changes the priority of a queued job. `None` when it is not queued.
    pub async fn set_job_priority(&self, id: JobId, priority: i32) -> Result<Option<Job>> {
        self.update_queued(
            id,
            job::Entity::update_many().col_expr(job::Column::Priority, Expr::value(priority)),
        )
        .await
    }

    /// Moves a live job to its final state and closes its credit reservation (settle the
    /// actual cost, refund the rest), in one transaction. `None` when the job was already
    /// final: the second of two racing finishes changes nothing.
    pub async fn finish_job(&self, id: JobId, outcome: Outcome, now: i64) -> Result<Option<Job>> {
        let txn = self.begin_write().await?;
        let Some(job) = job::Entity::find_by_id(id).one(&txn).await? else {
            return Err(StoreError::NotFound { what: "job" });
        };
        if job.state.is_final() {
            return Ok(None);
        }
        let (state, charged, error, result) = match &outcome {
            Outcome::Succeeded {
                actual_credits,
                result_asset,
            } => (
                JobState::Succeeded,
                (*actual_credits).clamp(0, job.estimate_credits),
                None,
                *result_asset,
            ),
            Outcome::Failed { reason } => (JobState::Failed, 0, Some(reason.clone()), None),
            Outcome::Cancelled { reason } => (JobState::Cancelled, 0, Some(reason.clone()), None),
        };
        let res = job::Entity::update_many()
            .col_expr(job::Column::State, Expr::value(state.as_str()))
            .col_expr(job::Column::ActualCredits, Expr::value(charged))
            .col_expr(job::Column::Error, Expr::value(error))
            .col_expr(job::Column::ResultAsset, Expr::value(result.map(|a| a.0)))
            .col_expr(job::Column::FinishedAt, Expr::value(now))
            .filter(job::Column::Id.eq(id))
            .filter(job::Column::State.is_in([JobState::Queued, JobState::Running]))
            .exec(&txn)
            .await?;
        if res.rows_affected == 0 {
            return Ok(None);
        }
        credits::release(&txn, job.user_id, job.estimate_credits, charged).await?;
        let note = match state {
            JobState::Succeeded => format!("job {id} succeeded: {charged} settled, {} refunded", job.estimate_credits - charged),
            _ => format!("job {id} {}: {} refunded", state.as_str(), job.estimate_credits),
        };
        credits::entry(
            &txn,
            job.user_id,
            Some(id),
            "release",
            job.estimate_credits - charged,
            charged,
            &note,
            now,
        )
        .await?;
        let job = job::Entity::find_by_id(id).one(&txn).await?;
        txn.commit().await?;
        Ok(job)
    }

    /// After a crash: jobs left `running` go back to `queued` while they have attempts left;
    /// the others fail with the reason. Returns (re-queued, failed).
    pub async fn recover_jobs(&self, max_attempts: i32, now: i64) -> Result<(Vec<Job>, Vec<Job>)> {
        let running = job::Entity::find()
            .filter(job::Column::State.eq(JobState::Running))
            .all(&self.db)
            .await?;
        let (mut requeued, mut failed) = (Vec::new(), Vec::new());
        for job in running {
            if job.attempts < max_attempts {
                job::Entity::update_many()
                    .col_expr(job::Column::State, Expr::value(JobState::Queued.as_str()))
                    .col_expr(job::Column::Device, Expr::value(Option::<String>::None))
                    .filter(job::Column::Id.eq(job.id))
                    .filter(job::Column::State.eq(JobState::Running))
                    .exec(&self.db)
                    .await?;
                requeued.push(self.job(job.id).await?.expect("job exists"));
            } else {
                let reason = format!(
                    "the server stopped while this job was running, {} times; not retried again",
                    job.attempts
                );
                if let Some(j) = self.finish_job(job.id, Outcome::Failed { reason }, now).await? {
                    failed.push(j);
                }
            }
        }
        Ok((requeued, failed))
    }
}
