//! Assets, jobs and the credit ledger.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::fk;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("assets")
                .col(big_pk_auto("id"))
                .col(big_integer("project_id"))
                .col(string_len("kind", 16))
                .col(string_len("mime", 64))
                .col(string("name"))
                .col(integer("width"))
                .col(integer("height"))
                .col(big_integer("bytes"))
                .col(string_len("sha256", 64))
                .col(string("path"))
                .col(big_integer("created_by"))
                .col(big_integer_null("source_job"))
                .col(big_integer("created_at"))
                .foreign_key(&mut fk("fk_assets_project", "assets", "project_id", "projects"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_assets_project")
                .table("assets")
                .col("project_id")
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("jobs")
                .col(big_pk_auto("id"))
                .col(big_integer("project_id"))
                .col(big_integer("user_id"))
                .col(string_len("kind", 64))
                .col(text("params"))
                .col(big_integer_null("input_asset"))
                .col(string_len("state", 16))
                .col(integer("priority"))
                .col(string_null("idempotency_key"))
                .col(big_integer("estimate_credits"))
                .col(big_integer_null("actual_credits"))
                .col(big_integer("estimate_ms"))
                .col(integer("attempts"))
                .col(text_null("error"))
                .col(big_integer_null("result_asset"))
                .col(string_null("device"))
                .col(string_null("timeline_clip"))
                .col(big_integer("created_at"))
                .col(big_integer_null("started_at"))
                .col(big_integer_null("finished_at"))
                .foreign_key(&mut fk("fk_jobs_project", "jobs", "project_id", "projects"))
                .foreign_key(&mut fk("fk_jobs_user", "jobs", "user_id", "users"))
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("idx_jobs_project").table("jobs").col("project_id").to_owned())
            .await?;
        m.create_index(Index::create().name("idx_jobs_state").table("jobs").col("state").to_owned())
            .await?;
        // A retried submit with the same key finds the first job instead of making a second.
        m.create_index(
            Index::create()
                .name("uq_jobs_idempotency")
                .table("jobs")
                .col("user_id")
                .col("idempotency_key")
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("credit_balances")
                .col(big_integer("user_id").primary_key())
                .col(big_integer("available"))
                .col(big_integer("reserved"))
                .col(big_integer("settled"))
                .col(big_integer("granted"))
                .check(Expr::col("available").gte(0))
                .check(Expr::col("reserved").gte(0))
                .foreign_key(&mut fk("fk_credit_balances_user", "credit_balances", "user_id", "users"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("credit_entries")
                .col(big_pk_auto("id"))
                .col(big_integer("user_id"))
                .col(big_integer_null("job_id"))
                .col(string_len("kind", 16))
                .col(big_integer("amount"))
                .col(big_integer("charged"))
                .col(string("note"))
                .col(big_integer("created_at"))
                .foreign_key(&mut fk("fk_credit_entries_user", "credit_entries", "user_id", "users"))
                .to_owned(),
        )
        .await?;
        // Exactly once: one reservation and one release (settle or refund) per job.
        m.create_index(
            Index::create()
                .name("uq_credit_entries_job_kind")
                .table("credit_entries")
                .col("job_id")
                .col("kind")
                .unique()
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("users")
                .add_column(big_integer_null("confirm_above_credits"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
