//! Convergence property test: 5 peers apply random edits and exchange their changes over a
//! network that reorders, drops and re-delivers messages; once every peer has heard everything
//! they hold the same document and the same validated view. Seeded, so a failure reproduces.

use automerge::{ActorId, AutoCommit, Change, ChangeHash};
use moviola_crdt::timeline::{TrackKind, Transition};
use moviola_crdt::{EditOp, Settings, Timeline, apply_and_commit, new_document};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

const N_PEERS: usize = 5;
const N_STEPS: usize = 400;

fn random_op(rng: &mut StdRng, view: &Timeline, next_id: &mut u64) -> EditOp {
    let mut fresh = |prefix: &str| {
        *next_id += 1;
        format!("{prefix}{next_id}")
    };
    let track_ids: Vec<&str> = view.tracks.iter().map(|t| t.id.as_str()).collect();
    let clips: Vec<_> = view.tracks.iter().flat_map(|t| &t.clips).collect();
    let time = |rng: &mut StdRng| rng.random_range(0..1000i64);
    match rng.random_range(0..16) {
        0 | 1 if track_ids.len() < 6 => EditOp::AddTrack {
            id: fresh("t"),
            kind: *[TrackKind::Video, TrackKind::Audio, TrackKind::Text].choose(rng).unwrap(),
            name: "track".into(),
            after: track_ids.choose(rng).map(|s| s.to_string()),
        },
        2 if !track_ids.is_empty() => EditOp::RenameTrack {
            id: track_ids.choose(rng).unwrap().to_string(),
            name: fresh("name"),
        },
        3 if track_ids.len() > 1 => EditOp::ReorderTrack {
            id: track_ids.choose(rng).unwrap().to_string(),
            before: track_ids.choose(rng).map(|s| s.to_string()),
        },
        4 if track_ids.len() > 3 => EditOp::RemoveTrack {
            id: track_ids.choose(rng).unwrap().to_string(),
        },
        5..=7 if !track_ids.is_empty() => {
            let source_in = rng.random_range(0..100);
            EditOp::InsertClip {
                id: fresh("c"),
                track: track_ids.choose(rng).unwrap().to_string(),
                asset: "a".into(),
                source_in,
                source_out: source_in + rng.random_range(1..300),
                start: time(rng),
            }
        }
        8 if !clips.is_empty() => EditOp::MoveClip {
            id: clips.choose(rng).unwrap().id.clone(),
            start: time(rng),
            track: track_ids.choose(rng).map(|s| s.to_string()),
        },
        9 if !clips.is_empty() => {
            let c = clips.choose(rng).unwrap();
            EditOp::TrimClip {
                id: c.id.clone(),
                source_in: c.source_in + rng.random_range(0..5),
                source_out: c.source_out + rng.random_range(-5..20),
            }
        }
        10 if !clips.is_empty() => {
            let c = clips.choose(rng).unwrap();
            EditOp::SplitClip {
                id: c.id.clone(),
                at: rng.random_range(c.start..c.end().max(c.start + 1)),
                new_id: fresh("c"),
            }
        }
        11 if !clips.is_empty() => EditOp::RemoveClip {
            id: clips.choose(rng).unwrap().id.clone(),
        },
        12 if !clips.is_empty() => EditOp::RippleDeleteClip {
            id: clips.choose(rng).unwrap().id.clone(),
        },
        13 if !clips.is_empty() => EditOp::SetTransition {
            clip: clips.choose(rng).unwrap().id.clone(),
            transition: Some(Transition {
                kind: "dissolve".into(),
                duration: rng.random_range(1..50),
            }),
            out: rng.random_bool(0.3),
        },
        14 => EditOp::AddMarker {
            id: fresh("m"),
            time: time(rng),
            label: "m".into(),
            color: String::new(),
        },
        _ => EditOp::AddComment {
            id: fresh("k"),
            author: "p".into(),
            text: "note".into(),
            start: time(rng),
            end: None,
            created_at: 0,
        },
    }
}

struct Message {
    to: usize,
    change: Vec<u8>,
}

fn run(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    // The server creates the document once; every peer starts from that same save.
    let origin = new_document(ActorId::from(&[0u8; 16][..]), "p", Settings::default()).save();
    let mut peers: Vec<AutoCommit> = (0..N_PEERS)
        .map(|i| AutoCommit::load(&origin).unwrap().with_actor(ActorId::from(&[i as u8 + 1; 16][..])))
        .collect();
    let mut sent: Vec<Vec<ChangeHash>> = vec![peers[0].get_heads(); N_PEERS];
    let mut network: Vec<Message> = Vec::new();
    let mut next_id = seed * 1_000_000;
    let (mut n_applied, mut n_dropped, mut n_duplicated) = (0, 0, 0);

    for _ in 0..N_STEPS {
        let who = rng.random_range(0..N_PEERS);
        let view = Timeline::read(&peers[who]);
        let op = random_op(&mut rng, &view, &mut next_id);
        if apply_and_commit(&mut peers[who], &op).is_ok() {
            n_applied += 1;
        }
        // Broadcast new local changes, each copy to be delivered, dropped or duplicated.
        if rng.random_bool(0.5) {
            let changes = peers[who]
                .get_changes(&sent[who])
                .into_iter()
                .map(|c| c.raw_bytes().to_vec())
                .collect::<Vec<_>>();
            sent[who] = peers[who].get_heads();
            for change in changes {
                for to in (0..N_PEERS).filter(|&p| p != who) {
                    if rng.random_bool(0.15) {
                        n_dropped += 1;
                        continue;
                    }
                    if rng.random_bool(0.1) {
                        n_duplicated += 1;
                        network.push(Message {
                            to,
                            change: change.clone(),
                        });
                    }
                    network.push(Message {
                        to,
                        change: change.clone(),
                    });
                }
            }
        }
        // Deliver a random subset of in-flight messages, in random order.
        for _ in 0..rng.random_range(0..=network.len().min(8)) {
            let idx = rng.random_range(0..network.len());
            let msg = network.swap_remove(idx);
            let change = Change::from_bytes(msg.change).unwrap();
            // Changes whose dependencies have not arrived yet wait inside automerge.
            peers[msg.to].apply_changes([change]).unwrap();
        }
    }
    assert!(n_applied > N_STEPS / 3, "seed {seed}: only {n_applied} edits applied");
    assert!(n_dropped > 0 && n_duplicated > 0, "seed {seed}: network was not lossy");

    // Anti-entropy: every pair runs the sync protocol until nothing more is sent, which
    // repairs the drops.
    for a in 0..N_PEERS {
        for b in 0..N_PEERS {
            if a != b {
                sync_pair(&mut peers, a, b);
            }
        }
    }
    let heads = peers[0].get_heads();
    let view = Timeline::read(&peers[0]);
    let issues = view.validate(&|_| Some(250));
    let plan = view.render_plan();
    for (idx, peer) in peers.iter_mut().enumerate().skip(1) {
        assert_eq!(peer.get_heads(), heads, "seed {seed}: peer {idx} heads differ");
        let other = Timeline::read(peer);
        assert_eq!(other, view, "seed {seed}: peer {idx} view differs");
        assert_eq!(other.validate(&|_| Some(250)), issues, "seed {seed}");
        assert_eq!(other.render_plan(), plan, "seed {seed}");
    }
}

fn sync_pair(peers: &mut [AutoCommit], a: usize, b: usize) {
    use automerge::sync::{State, SyncDoc};
    let (mut sa, mut sb) = (State::new(), State::new());
    for _ in 0..100 {
        let ma = peers[a].sync().generate_sync_message(&mut sa);
        if let Some(m) = ma.clone() {
            peers[b].sync().receive_sync_message(&mut sb, m).unwrap();
        }
        let mb = peers[b].sync().generate_sync_message(&mut sb);
        if let Some(m) = mb.clone() {
            peers[a].sync().receive_sync_message(&mut sa, m).unwrap();
        }
        if ma.is_none() && mb.is_none() {
            return;
        }
    }
    panic!("sync between {a} and {b} did not finish in 100 rounds");
}

#[test]
fn five_peers_converge_over_a_lossy_network() {
    for seed in 0..12 {
        run(seed);
    }
}
