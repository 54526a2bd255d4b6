#![allow(unreachable_pub)]
//! The same test bodies against SQLite and PostgreSQL. PostgreSQL comes from
//! `MOVIOLA_TEST_PG_URL` (an admin URL; each test creates its own database), which the test
//! command (`scripts/test.sh`) sets after starting a local server.

use moviola_store::{Balance, JobState, NewAsset, NewJob, Outcome, ProjectId, Role, Store, StoreError, UserId};

async fn sqlite() -> (Store, tempdir::TempDir) {
    let dir = tempdir::TempDir::new();
    let store = Store::connect(&format!("sqlite://{}/nested/moviola.db", dir.path.display()), 4)
        .await
        .unwrap();
    (store, dir)
}

async fn postgres() -> (Store, tempdir::TempDir) {
    let admin = std::env::var("MOVIOLA_TEST_PG_URL")
        .expect("MOVIOLA_TEST_PG_URL must name a PostgreSQL admin URL: run the tests through scripts/test.sh");
    let url = tempdir::fresh_pg_database(&admin).await;
    (Store::connect(&url, 4).await.unwrap(), tempdir::TempDir::new())
}

mod tempdir {
    use sea_orm::{ConnectionTrait, Database};

    pub struct TempDir {
        pub path: std::path::PathBuf,
    }

    impl TempDir {
        pub fn new() -> TempDir {
            let path = std::env::temp_dir().join(format!("moviola-store-test-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&path).unwrap();
            TempDir { path }
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }

    pub async fn fresh_pg_database(admin_url: &str) -> String {
        let name = format!("moviola_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(admin_url).await.expect("connect to PostgreSQL");
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
        admin.close().await.unwrap();
        let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap();
        format!("{base}/{name}")
    }
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite { $( #[tokio::test] async fn $name() { let (store, _dir) = super::sqlite().await; super::$name(store).await; } )* }
        mod on_postgres { $( #[tokio::test] async fn $name() { let (store, _dir) = super::postgres().await; super::$name(store).await; } )* }
    };
}

both_backends!(
    users_and_tokens,
    projects_and_roles,
    document_journal_and_compaction,
    delete_cascades,
    credits_reserve_and_release_exactly_once,
    idempotent_submit_reserves_once,
    crash_recovery_requeues_then_fails,
    assets_deduplicate_by_content
);

async fn users_and_tokens(store: Store) {
    let ana = store.create_user("ana@example.com", "Ana", "phc", false, 1).await.unwrap();
    let err = store.create_user("ana@example.com", "Ana 2", "phc", false, 2).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(store.user_by_email("ana@example.com").await.unwrap().unwrap().id, ana.id);
    store.insert_token(ana.id, "hash1", 10, 100).await.unwrap();
    assert_eq!(store.user_by_token_hash("hash1", 50).await.unwrap().unwrap().id, ana.id);
    assert!(
        store.user_by_token_hash("hash1", 100).await.unwrap().is_none(),
        "expired token accepted"
    );
    assert!(store.user_by_token_hash("nope", 50).await.unwrap().is_none());
    store.delete_token("hash1").await.unwrap();
    assert!(store.user_by_token_hash("hash1", 50).await.unwrap().is_none());
    assert!(store.delete_token("hash1").await.unwrap_err().is_not_found());
}

async fn projects_and_roles(store: Store) {
    let ana = store.create_user("ana@example.com", "Ana", "phc", false, 1).await.unwrap();
    let bo = store.create_user("bo@example.com", "Bo", "phc", false, 1).await.unwrap();
    let p = store.create_project(ana.id, "Trailer", "docA", vec![1, 2, 3], 5).await.unwrap();
    assert!(
        store
            .create_project(ana.id, "Again", "docA", vec![], 5)
            .await
            .unwrap_err()
            .is_conflict()
    );
    assert_eq!(store.role_of(p.id, ana.id).await.unwrap(), Some(Role::Owner));
    assert_eq!(store.role_of(p.id, bo.id).await.unwrap(), None);
    store.add_member(p.id, bo.id, Role::Viewer, 6).await.unwrap();
    assert!(store.add_member(p.id, bo.id, Role::Editor, 6).await.unwrap_err().is_conflict());
    store.set_role(p.id, bo.id, Role::Editor).await.unwrap();
    assert_eq!(store.role_of(p.id, bo.id).await.unwrap(), Some(Role::Editor));
    let listed = store.projects_of(bo.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].project.name.as_str(), listed[0].role), ("Trailer", Role::Editor));
    assert_eq!(store.rename_project(p.id, "Teaser").await.unwrap().name, "Teaser");
    assert_eq!(store.project_by_doc_id("docA").await.unwrap().unwrap().name, "Teaser");
    assert_eq!(store.count_owners(p.id).await.unwrap(), 1);
    store.remove_member(p.id, bo.id).await.unwrap();
    assert!(store.projects_of(bo.id).await.unwrap().is_empty());
    assert!(store.remove_member(p.id, bo.id).await.unwrap_err().is_not_found());
    store.audit(7, Some(ana.id), Some(p.id), "project.rename", "Teaser").await.unwrap();
    assert_eq!(store.audit_for_project(p.id).await.unwrap()[0].action, "project.rename");
}

async fn document_journal_and_compaction(store: Store) {
    let ana = store.create_user("ana@example.com", "Ana", "phc", false, 1).await.unwrap();
    let p = store.create_project(ana.id, "P", "docB", b"snap0".to_vec(), 1).await.unwrap();
    let doc = store.load_document(p.id).await.unwrap();
    assert_eq!((doc.snapshot.as_slice(), doc.upto_seq, doc.changes.len()), (&b"snap0"[..], 0, 0));
    let s1 = store.append_changes(p.id, b"c1".to_vec(), 2).await.unwrap();
    let s2 = store.append_changes(p.id, b"c2".to_vec(), 3).await.unwrap();
    assert!(s2 > s1);
    let doc = store.load_document(p.id).await.unwrap();
    assert_eq!(doc.changes, vec![(s1, b"c1".to_vec()), (s2, b"c2".to_vec())]);
    store.compact_document(p.id, b"snap1".to_vec(), s1, 4).await.unwrap();
    let doc = store.load_document(p.id).await.unwrap();
    assert_eq!((doc.snapshot.as_slice(), doc.upto_seq), (&b"snap1"[..], s1));
    assert_eq!(doc.changes, vec![(s2, b"c2".to_vec())]);
    // An older compaction arriving late never moves the snapshot backwards.
    store.compact_document(p.id, b"stale".to_vec(), 0, 5).await.unwrap();
    assert_eq!(store.load_document(p.id).await.unwrap().snapshot, b"snap1".to_vec());
}

async fn delete_cascades(store: Store) {
    let ana = store.create_user("ana@example.com", "Ana", "phc", false, 1).await.unwrap();
    let p = store.create_project(ana.id, "P", "docC", vec![0], 1).await.unwrap();
    store.append_changes(p.id, vec![1], 2).await.unwrap();
    store.delete_project(p.id).await.unwrap();
    assert!(store.project_by_id(p.id).await.unwrap().is_none());
    assert!(store.load_document(p.id).await.unwrap_err().is_not_found());
    assert!(store.role_of(p.id, ana.id).await.unwrap().is_none());
    assert!(store.delete_project(p.id).await.unwrap_err().is_not_found());
}

fn new_job(project: ProjectId, user: UserId, credits: i64, key: Option<&str>) -> NewJob {
    NewJob {
        project,
        user,
        kind: "enhance.color".into(),
        params: "{}".into(),
        input_asset: None,
        priority: 0,
        idempotency_key: key.map(str::to_owned),
        estimate_credits: credits,
        estimate_ms: 1000,
        timeline_clip: None,
    }
}

/// The ledger's invariant: every credit granted is available, reserved or settled.
fn balanced(b: &Balance) {
    assert_eq!(b.granted, b.available + b.reserved + b.settled, "{b:?}");
    assert!(b.available >= 0 && b.reserved >= 0, "{b:?}");
}

async fn credits_reserve_and_release_exactly_once(store: Store) {
    let ana = store.create_user("ana@example.com", "Ana", "phc", false, 1).await.unwrap();
    let p = store.create_project(ana.id, "P", "docJ", vec![0], 1).await.unwrap();
    assert!(matches!(
        store.grant_credits(ana.id, 0, "zero", 1).await,
        Err(StoreError::Invalid { .. })
    ));
    store.grant_credits(ana.id, 100, "welcome", 1).await.unwrap();

    let (job, created) = store.submit_job(new_job(p.id, ana.id, 30, None), 2).await.unwrap();
    assert!(created);
    assert_eq!(job.state, JobState::Queued);
    let b = store.credit_balance(ana.id).await.unwrap();
    assert_eq!((b.available, b.reserved), (70, 30));
    balanced(&b);

    let started = store.start_job(job.id, "cpu", 3).await.unwrap().unwrap();
    assert_eq!((started.state, started.attempts), (JobState::Running, 1));
    assert!(
        store.start_job(job.id, "cpu", 3).await.unwrap().is_none(),
        "a running job cannot start twice"
    );

    let done = store
        .finish_job(
            job.id,
            Outcome::Succeeded {
                actual_credits: 20,
                result_asset: None,
            },
            4,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (done.state, done.actual_credits, done.estimate_credits),
        (JobState::Succeeded, Some(20), 30)
    );
    // A second finish (say a cancel racing the success) changes nothing.
    assert!(
        store
            .finish_job(job.id, Outcome::Cancelled { reason: "late".into() }, 5)
            .await
            .unwrap()
            .is_none()
    );
    let b = store.credit_balance(ana.id).await.unwrap();
    assert_eq!((b.available, b.reserved, b.settled), (80, 0, 20));
    balanced(&b);

    // Cancel refunds everything.
    let (j2, _) = store.submit_job(new_job(p.id, ana.id, 50, None), 6).await.unwrap();
    store
        .finish_job(j2.id, Outcome::Cancelled { reason: "user".into() }, 7)
        .await
        .unwrap()
        .unwrap();
    let b = store.credit_balance(ana.id).await.unwrap();
    assert_eq!((b.available, b.reserved, b.settled), (80, 0, 20));

    // Not enough credits: an error, and no job, no reservation.
    let before = store.jobs_of(p.id, None).await.unwrap().len();
    match store.submit_job(new_job(p.id, ana.id, 81, None), 8).await {
        Err(StoreError::InsufficientCredits { needed: 81, available: 80 }) => {}
        other => panic!("expected insufficient credits, got {other:?}"),
    }
    assert_eq!(store.jobs_of(p.id, None).await.unwrap().len(), before);
    let b = store.credit_balance(ana.id).await.unwrap();
    assert_eq!((b.available, b.reserved), (80, 0));
    balanced(&b);
    let kinds: Vec<String> = store.credit_entries(ana.id).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["grant", "reserve", "release", "reserve", "release"]);
}

async fn idempotent_submit_reserves_once(store: Store) {
    let ana = store.create_user("ana@example.com", "Ana", "phc", false, 1).await.unwrap();
    let p = store.create_project(ana.id, "P", "docK", vec![0], 1).await.unwrap();
    store.grant_credits(ana.id, 100, "welcome", 1).await.unwrap();
    let (a, created_a) = store.submit_job(new_job(p.id, ana.id, 10, Some("k1")), 2).await.unwrap();
    let (b, created_b) = store.submit_job(new_job(p.id, ana.id, 10, Some("k1")), 3).await.unwrap();
    assert!(created_a && !created_b);
    assert_eq!(a.id, b.id);
    assert_eq!(store.credit_balance(ana.id).await.unwrap().reserved, 10);
    let (c, created_c) = store.submit_job(new_job(p.id, ana.id, 10, Some("k2")), 3).await.unwrap();
    assert!(created_c && c.id != a.id);
    assert_eq!(store.live_job_count(ana.id).await.unwrap(), 2);
}

async fn crash_recovery_requeues_then_fails(store: Store) {
    let ana = store.create_user("ana@example.com", "Ana", "phc", false, 1).await.unwrap();
    let p = store.create_project(ana.id, "P", "docR", vec![0], 1).await.unwrap();
    store.grant_credits(ana.id, 100, "welcome", 1).await.unwrap();
    let (job, _) = store.submit_job(new_job(p.id, ana.id, 10, None), 2).await.unwrap();
    store.start_job(job.id, "cpu", 3).await.unwrap().unwrap();
    let (requeued, failed) = store.recover_jobs(2, 4).await.unwrap();
    assert_eq!((requeued.len(), failed.len()), (1, 0));
    assert_eq!(requeued[0].state, JobState::Queued);
    store.start_job(job.id, "cpu", 5).await.unwrap().unwrap();
    let (requeued, failed) = store.recover_jobs(2, 6).await.unwrap();
    assert_eq!((requeued.len(), failed.len()), (0, 1));
    assert_eq!(failed[0].state, JobState::Failed);
    assert!(failed[0].error.as_deref().unwrap().contains("stopped while this job was running"));
    let b = store.credit_balance(ana.id).await.unwrap();
    assert_eq!((b.available, b.reserved, b.settled), (100, 0, 0));
    assert!(store.live_jobs().await.unwrap().is_empty());
}

async fn assets_deduplicate_by_content(store: Store) {
    let ana = store.create_user("ana@example.com", "Ana", "phc", false, 1).await.unwrap();
    let p = store.create_project(ana.id, "P", "docA", vec![0], 1).await.unwrap();
    let new = NewAsset {
        project: p.id,
        kind: "image".into(),
        mime: "image/png".into(),
        name: "a.png".into(),
        width: 4,
        height: 3,
        bytes: 99,
        sha256: "ab".repeat(32),
        path: "p/ab.png".into(),
        created_by: ana.id,
        source_job: None,
        duration_ms: None,
        info: None,
    };
    let (a, created) = store.insert_asset(new.clone(), 1).await.unwrap();
    let (b, again) = store
        .insert_asset(
            NewAsset {
                name: "copy.png".into(),
                ..new
            },
            2,
        )
        .await
        .unwrap();
    assert!(created && !again);
    assert_eq!(a.id, b.id);
    assert_eq!(store.assets_of(p.id).await.unwrap().len(), 1);
}
