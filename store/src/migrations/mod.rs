//! Schema migrations, the same for SQLite and PostgreSQL. One migration per file: the file
//! name is the migration's name.

use sea_orm_migration::prelude::*;

mod m0001_init;
mod m0002_jobs;
mod m0003_media;

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
