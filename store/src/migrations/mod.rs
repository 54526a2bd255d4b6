//! Schema migrations, the same for SQLite and PostgreSQL. One migration per file: the file
//! name is the migration's name.

use sea_orm_migration::prelude::*;

mod m0001_init;
mod m0002_jobs;
mod m0003_media;

/// A foreign key from `from_table.from_col` to `to_table.id`, deleting with its parent.
fn fk(name: &str, from_table: &'static str, from_col: &'static str, to_table: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from_table, from_col)
        .to(to_table, "id")
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_init::Migration),
            Box::new(m0002_jobs::Migration),
            Box::new(m0003_media::Migration),
        ]
    }
}
