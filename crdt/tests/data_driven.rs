//! Data-driven cases: `testdata/NAME.ops` holds one JSON edit per line (or an
//! `{"asset": .., "duration": ..}` line giving an asset's length); `testdata/NAME.expect` holds
//! the resulting view, validation issues and render plan. `UPDATE_EXPECT=1 cargo test` rewrites
//! the expectations; review the diff before committing.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use automerge::ActorId;
use moviola_crdt::{EditOp, Settings, Timeline, apply_and_commit, new_document};

fn run_case(ops_path: &Path) -> String {
    let mut doc = new_document(ActorId::from(&[1u8; 16][..]), "case", Settings::default());
    let mut assets: HashMap<String, i64> = HashMap::new();
    let mut out = String::new();
    for (line_idx, line) in std::fs::read_to_string(ops_path).unwrap().lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{}:{}: {e}", ops_path.display(), line_idx + 1));
        if let Some(asset) = value.get("asset").and_then(|a| a.as_str()).filter(|_| value.get("op").is_none()) {
            assets.insert(asset.to_owned(), value["duration"].as_i64().unwrap());
            continue;
        }
        let op: EditOp = serde_json::from_value(value).unwrap_or_else(|e| panic!("{}:{}: {e}", ops_path.display(), line_idx + 1));
        if let Err(err) = apply_and_commit(&mut doc, &op) {
            let _ = writeln!(out, "error on line {}: {err}", line_idx + 1);
        }
    }
    let view = Timeline::read(&doc);
    out.push_str(&view.dump());
    for issue in view.validate(&|asset| assets.get(asset).copied()) {
        let _ = writeln!(out, "issue {issue:?}");
    }
    for plan in view.render_plan() {
        let _ = write!(out, "plan {}:", plan.track);
        for s in &plan.segments {
            let _ = write!(out, " [{},{})={}@{}", s.start, s.end, s.clip, s.source_start);
        }
        out.push('\n');
    }
    out
}

#[test]
fn testdata_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = Vec::new();
    let mut n_cases = 0;
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ops"))
        .collect();
    paths.sort();
    for ops_path in paths {
        n_cases += 1;
        let actual = run_case(&ops_path);
        let expect_path = ops_path.with_extension("expect");
        if update {
            std::fs::write(&expect_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expect_path).unwrap_or_default();
        if expected != actual {
            failures.push(format!("--- {}\nexpected:\n{expected}\nactual:\n{actual}", expect_path.display()));
        }
    }
    assert!(n_cases >= 5, "test cases missing from {}", dir.display());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
