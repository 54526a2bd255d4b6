//! Video and audio assets: duration and the probe result.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("assets")
                .add_column(big_integer_null("duration_ms"))
                .to_owned(),
        )
        .await?;
        m.alter_table(Table::alter().table("assets").add_column(text_null("info")).to_owned())
            .await?;
        Ok(())
    }
}
