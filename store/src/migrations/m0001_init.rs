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
                .table("users")
                .col(big_pk_auto("id"))
                .col(string_uniq("email"))
                .col(string("display_name"))
                .col(string("password_hash"))
                .col(boolean("is_admin"))
                .col(big_integer("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("auth_tokens")
                .col(big_pk_auto("id"))
                .col(big_integer("user_id"))
                .col(string_uniq("token_hash"))
                .col(big_integer("created_at"))
                .col(big_integer("expires_at"))
                .foreign_key(&mut fk("fk_auth_tokens_user", "auth_tokens", "user_id", "users"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("projects")
                .col(big_pk_auto("id"))
                .col(string_uniq("doc_id"))
                .col(string("name"))
                .col(big_integer("created_by"))
                .col(big_integer("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("memberships")
                .col(big_integer("project_id"))
                .col(big_integer("user_id"))
                .col(string_len("role", 16))
                .col(big_integer("created_at"))
                .primary_key(Index::create().col("project_id").col("user_id"))
                .foreign_key(&mut fk("fk_memberships_project", "memberships", "project_id", "projects"))
                .foreign_key(&mut fk("fk_memberships_user", "memberships", "user_id", "users"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_memberships_user")
                .table("memberships")
                .col("user_id")
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("doc_snapshots")
                .col(big_integer("project_id").primary_key())
                .col(blob("data"))
                .col(big_integer("upto_seq"))
                .col(big_integer("updated_at"))
                .foreign_key(&mut fk("fk_doc_snapshots_project", "doc_snapshots", "project_id", "projects"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("doc_changes")
                .col(big_pk_auto("seq"))
                .col(big_integer("project_id"))
                .col(blob("data"))
                .col(big_integer("created_at"))
                .foreign_key(&mut fk("fk_doc_changes_project", "doc_changes", "project_id", "projects"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_doc_changes_project_seq")
                .table("doc_changes")
                .col("project_id")
                .col("seq")
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("audit_log")
                .col(big_pk_auto("id"))
                .col(big_integer("at"))
                .col(big_integer_null("user_id"))
                .col(big_integer_null("project_id"))
                .col(string("action"))
                .col(text("detail"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_audit_log_project")
                .table("audit_log")
                .col("project_id")
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "audit_log",
            "doc_changes",
            "doc_snapshots",
            "memberships",
            "projects",
            "auth_tokens",
            "users",
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
