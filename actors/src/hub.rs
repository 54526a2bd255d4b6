//! The registry of running project actors and of open sessions per user.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix::{Actor, Addr};
use moviola_crdt::wire::DocumentId;
use moviola_store::{ProjectId, Role, Store, UserId};

use crate::limits::{Limits, ProjectSettings};
use crate::project::{MemberChanged, ProjectActor, ProjectDeleted, Shutdown};

/// Shared by every session and HTTP handler. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

struct HubInner {
    store: Store,
    limits: Limits,
    project_settings: ProjectSettings,
    /// This server's automerge-repo peer id.
    peer_id: String,
    projects: Mutex<HashMap<ProjectId, Addr<ProjectActor>>>,
    sessions: Mutex<HashMap<UserId, usize>>,
}

/// Proof that a session slot is held; releases it when dropped.
pub struct SessionSlot {
    hub: Hub,
    user: UserId,
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut sessions = self.hub.inner.sessions.lock().expect("sessions lock");
        if let Some(n) = sessions.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                sessions.remove(&self.user);
            }
        }
    }
}

impl Hub {
    pub fn new(store: Store, limits: Limits, project_settings: ProjectSettings, peer_id: String) -> Hub {
        Hub {
            inner: Arc::new(HubInner {
                store,
                limits,
                project_settings,
                peer_id,
                projects: Mutex::default(),
                sessions: Mutex::default(),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    pub fn peer_id(&self) -> &str {
        &self.inner.peer_id
    }

    /// Takes one of `user`'s session slots, or `None` when all are in use.
    pub fn open_session(&self, user: UserId) -> Option<SessionSlot> {
        let mut sessions = self.inner.sessions.lock().expect("sessions lock");
        let n = sessions.entry(user).or_insert(0);
        if *n >= self.inner.limits.sessions_per_user {
            return None;
        }
        *n += 1;
        Some(SessionSlot { hub: self.clone(), user })
    }

    /// The running actor of a project, started (and its document loaded) if needed. There is
    /// never more than one actor per project in this process.
    pub fn project(&self, project: ProjectId, doc_id: DocumentId) -> Addr<ProjectActor> {
        let mut projects = self.inner.projects.lock().expect("projects lock");
        if let Some(addr) = projects.get(&project).filter(|a| a.connected()) {
            return addr.clone();
        }
        let addr = ProjectActor::new(self.clone(), project, doc_id, self.inner.project_settings.clone()).start();
        projects.insert(project, addr.clone());
        addr
    }

    /// Removes `addr` from the registry if it is still the registered actor of `project`.
    /// Returns whether it was.
    pub(crate) fn deregister(&self, project: ProjectId, addr: &Addr<ProjectActor>) -> bool {
        let mut projects = self.inner.projects.lock().expect("projects lock");
        if projects.get(&project) == Some(addr) {
            projects.remove(&project);
            true
        } else {
            false
        }
    }

    fn running(&self, project: ProjectId) -> Option<Addr<ProjectActor>> {
        self.inner.projects.lock().expect("projects lock").get(&project).cloned()
    }

    /// Tells a running project that a member's role changed (`None`: removed).
    pub fn member_changed(&self, project: ProjectId, user: UserId, role: Option<Role>) {
        if let Some(addr) = self.running(project) {
            addr.do_send(MemberChanged { user, role });
        }
    }

    /// Tells a running project that it was deleted: its peers are told the document is gone.
    pub fn project_deleted(&self, project: ProjectId) {
        if let Some(addr) = self.running(project) {
            addr.do_send(ProjectDeleted);
        }
    }

    /// Compacts and stops every running project (graceful shutdown).
    pub async fn shutdown(&self) {
        let addrs: Vec<_> = self.inner.projects.lock().expect("projects lock").drain().map(|(_, a)| a).collect();
        for addr in addrs {
            let _ = addr.send(Shutdown).await;
        }
    }

    pub fn n_running_projects(&self) -> usize {
        self.inner.projects.lock().expect("projects lock").len()
    }
}
