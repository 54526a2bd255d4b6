//! HTTP `/api/v1`: accounts, projects and members. Every route that touches a project checks
//! the caller's role first; an outsider gets 404, as if the project did not exist.

use actix_web::{HttpResponse, web};
use moviola_actors::jobs::supervisor::Cancel;
use moviola_actors::now_ms;
use moviola_crdt::wire::DocumentId;
use moviola_store::{Outcome, Project, ProjectId, Role, User, UserId};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::auth::{self, Authed};
use crate::error::ApiError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/register", web::post().to(register))
        .route("/auth/login", web::post().to(login))
        .route("/auth/logout", web::post().to(logout))
        .route("/me", web::get().to(me))
        .route("/projects", web::get().to(list_projects))
        .route("/projects", web::post().to(create_project))
        .route("/projects/{id}", web::get().to(get_project))
        .route("/projects/{id}", web::patch().to(rename_project))
        .route("/projects/{id}", web::delete().to(delete_project))
        .route("/projects/{id}/members", web::get().to(list_members))
        .route("/projects/{id}/members", web::post().to(add_member))
        .route("/projects/{id}/members/{user_id}", web::patch().to(change_member))
        .route("/projects/{id}/members/{user_id}", web::delete().to(remove_member));
}

fn user_json(user: &User) -> serde_json::Value {
    json!({ "id": user.id, "email": user.email, "display_name": user.display_name, "is_admin": user.is_admin })
}

fn project_json(project: &Project, role: Role) -> serde_json::Value {
    json!({
        "id": project.id,
        "name": project.name,
        "doc_id": project.doc_id,
        "doc_url": format!("automerge:{}", project.doc_id),
        "role": role,
        "created_at": project.created_at,
    })
}

fn check_name(name: &str, what: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::bad_request(format!("{what} must be 1 to 200 characters")));
    }
    Ok(name.to_owned())
}

#[derive(Deserialize)]
struct RegisterBody {
    email: String,
    password: String,
    #[serde(default)]
    display_name: Option<String>,
}

async fn issue_token(state: &AppState, user: &User) -> Result<String, ApiError> {
    let (token, hash) = auth::new_token();
    let now = now_ms();
    state
        .hub
        .store()
        .insert_token(user.id, &hash, now, now + state.config.token_ttl.as_millis() as i64)
        .await?;
    Ok(token)
}

async fn register(state: web::Data<AppState>, body: web::Json<RegisterBody>) -> Result<HttpResponse, ApiError> {
    let email = body.email.trim().to_lowercase();
    if !email.contains('@') || email.len() > 254 {
        return Err(ApiError::bad_request("email must be an address like ana@example.com"));
    }
    if body.password.chars().count() < state.config.min_password_length {
        return Err(ApiError::bad_request(format!(
            "password must be at least {} characters",
            state.config.min_password_length
        )));
    }
    let display_name = check_name(
        body.display_name
            .as_deref()
            .unwrap_or_else(|| email.split('@').next().unwrap_or("user")),
        "display_name",
    )?;
    let password = body.password.clone();
    let hash = state.passwords.hash(password).await?;
    let user = state
        .hub
        .store()
        .create_user(&email, &display_name, &hash, false, now_ms())
        .await
        .map_err(|e| {
            if e.is_conflict() {
                ApiError::conflict("an account with this email already exists: sign in instead")
            } else {
                e.into()
            }
        })?;
    let token = issue_token(&state, &user).await?;
    if state.config.signup_grant > 0 {
        state
            .hub
            .store()
            .grant_credits(user.id, state.config.signup_grant, "sign-up grant", now_ms())
            .await?;
    }
    state
        .hub
        .store()
        .audit(now_ms(), Some(user.id), None, "user.register", &email)
        .await?;
    Ok(HttpResponse::Created().json(json!({ "user": user_json(&user), "token": token })))
}

#[derive(Deserialize)]
struct LoginBody {
    email: String,
    password: String,
}

async fn login(state: web::Data<AppState>, body: web::Json<LoginBody>) -> Result<HttpResponse, ApiError> {
    let email = body.email.trim().to_lowercase();
    let user = state.hub.store().user_by_email(&email).await?;
    let phc = user.as_ref().map(|u| u.password_hash.clone());
    let password = body.password.clone();
    // Verify even for an unknown email, so timing does not reveal which emails exist.
    const UNKNOWN: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2Qj6NcrtWAFGbXJ7Dvx8bRDgLA3C1wMcKtTZzKqgQEw";
    let known = phc.is_some();
    let ok = state
        .passwords
        .verify(password, phc.unwrap_or_else(|| UNKNOWN.to_owned()))
        .await?
        && known;
    let user = match (user, ok) {
        (Some(user), true) => user,
        _ => return Err(ApiError::unauthorized("wrong email or password")),
    };
    let token = issue_token(&state, &user).await?;
    state.hub.store().audit(now_ms(), Some(user.id), None, "user.login", "").await?;
    Ok(HttpResponse::Ok().json(json!({ "user": user_json(&user), "token": token })))
}

async fn logout(state: web::Data<AppState>, authed: Authed) -> Result<HttpResponse, ApiError> {
    state.hub.store().delete_token(&authed.token_hash).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn me(authed: Authed) -> HttpResponse {
    HttpResponse::Ok().json(user_json(&authed.user))
}

async fn list_projects(state: web::Data<AppState>, authed: Authed) -> Result<HttpResponse, ApiError> {
    let projects = state.hub.store().projects_of(authed.user.id).await?;
    Ok(HttpResponse::Ok().json(json!({ "projects": projects.iter().map(|p| project_json(&p.project, p.role)).collect::<Vec<_>>() })))
}

#[derive(Deserialize)]
struct CreateProjectBody {
    name: String,
}

async fn create_project(state: web::Data<AppState>, authed: Authed, body: web::Json<CreateProjectBody>) -> Result<HttpResponse, ApiError> {
    let name = check_name(&body.name, "name")?;
    let doc_id = DocumentId::random();
    // The server creates the document's shared containers, once, here; clients never do.
    let mut doc = moviola_crdt::new_document(automerge::ActorId::random(), &name, moviola_crdt::Settings::default());
    let project = state
        .hub
        .store()
        .create_project(authed.user.id, &name, doc_id.as_str(), doc.save(), now_ms())
        .await?;
    state
        .hub
        .store()
        .audit(now_ms(), Some(authed.user.id), Some(project.id), "project.create", &name)
        .await?;
    Ok(HttpResponse::Created().json(project_json(&project, Role::Owner)))
}

/// Loads a project and the caller's role in it; outsiders get 404.
pub(crate) async fn project_for(state: &AppState, user: UserId, id: ProjectId) -> Result<(Project, Role), ApiError> {
    let not_found = || ApiError::not_found(format!("project {id} not found, or you are not a member"));
    let role = state.hub.store().role_of(id, user).await?.ok_or_else(not_found)?;
    let project = state.hub.store().project_by_id(id).await?.ok_or_else(not_found)?;
    Ok((project, role))
}

fn require_owner(role: Role) -> Result<(), ApiError> {
    if role.can_manage() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "only an owner can do this; your role is {}",
            role.as_str()
        )))
    }
}

async fn get_project(state: web::Data<AppState>, authed: Authed, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (project, role) = project_for(&state, authed.user.id, ProjectId(*path)).await?;
    Ok(HttpResponse::Ok().json(project_json(&project, role)))
}

async fn rename_project(
    state: web::Data<AppState>,
    authed: Authed,
    path: web::Path<i64>,
    body: web::Json<CreateProjectBody>,
) -> Result<HttpResponse, ApiError> {
    let (project, role) = project_for(&state, authed.user.id, ProjectId(*path)).await?;
    if !role.can_edit() {
        return Err(ApiError::forbidden("viewers cannot rename a project"));
    }
    let name = check_name(&body.name, "name")?;
    let project = state.hub.store().rename_project(project.id, &name).await?;
    state
        .hub
        .store()
        .audit(now_ms(), Some(authed.user.id), Some(project.id), "project.rename", &name)
        .await?;
    Ok(HttpResponse::Ok().json(project_json(&project, role)))
}

async fn delete_project(state: web::Data<AppState>, authed: Authed, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (project, role) = project_for(&state, authed.user.id, ProjectId(*path)).await?;
    require_owner(role)?;
    // Live jobs are cancelled first, so their reserved credits are refunded; the job rows and
    // the media files go with the project.
    let store = state.hub.store();
    let reason = "the project was deleted".to_string();
    for job in store.jobs_of(project.id, None).await?.into_iter().filter(|j| !j.state.is_final()) {
        let _ = state
            .jobs
            .send(Cancel {
                job: job.id,
                reason: reason.clone(),
            })
            .await;
        store
            .finish_job(job.id, Outcome::Cancelled { reason: reason.clone() }, now_ms())
            .await?;
    }
    store.delete_project(project.id).await?;
    state.hub.project_deleted(project.id);
    let media = state.config.media_dir.join(format!("projects/{}", project.id));
    if let Err(err) = std::fs::remove_dir_all(&media) {
        if err.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(project = %project.id, %err, "could not remove the project's media folder");
        }
    }
    state
        .hub
        .store()
        .audit(now_ms(), Some(authed.user.id), Some(project.id), "project.delete", &project.name)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn list_members(state: web::Data<AppState>, authed: Authed, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (project, _) = project_for(&state, authed.user.id, ProjectId(*path)).await?;
    let mut members = Vec::new();
    for m in state.hub.store().members(project.id).await? {
        if let Some(user) = state.hub.store().user_by_id(m.user_id).await? {
            members.push(json!({ "user": user_json(&user), "role": m.role }));
        }
    }
    Ok(HttpResponse::Ok().json(json!({ "members": members })))
}

#[derive(Deserialize)]
struct AddMemberBody {
    email: String,
    role: Role,
}

async fn add_member(
    state: web::Data<AppState>,
    authed: Authed,
    path: web::Path<i64>,
    body: web::Json<AddMemberBody>,
) -> Result<HttpResponse, ApiError> {
    let (project, role) = project_for(&state, authed.user.id, ProjectId(*path)).await?;
    require_owner(role)?;
    let email = body.email.trim().to_lowercase();
    let user = state
        .hub
        .store()
        .user_by_email(&email)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no account with email {email}: ask them to sign up first")))?;
    state
        .hub
        .store()
        .add_member(project.id, user.id, body.role, now_ms())
        .await
        .map_err(|e| {
            if e.is_conflict() {
                ApiError::conflict(format!("{email} is already a member: change their role instead"))
            } else {
                e.into()
            }
        })?;
    state.hub.member_changed(project.id, user.id, Some(body.role));
    state
        .hub
        .store()
        .audit(
            now_ms(),
            Some(authed.user.id),
            Some(project.id),
            "member.add",
            &format!("{} as {}", user.id, body.role.as_str()),
        )
        .await?;
    Ok(HttpResponse::Created().json(json!({ "user": user_json(&user), "role": body.role })))
}

#[derive(Deserialize)]
struct ChangeMemberBody {
    role: Role,
}

/// Refuses a change that would leave the project without an owner.
async fn check_last_owner(state: &AppState, project: ProjectId, user: UserId, new_role: Option<Role>) -> Result<(), ApiError> {
    let current = state
        .hub
        .store()
        .role_of(project, user)
        .await?
        .ok_or_else(|| ApiError::not_found("that user is not a member"))?;
    if current == Role::Owner && new_role != Some(Role::Owner) && state.hub.store().count_owners(project).await? <= 1 {
        return Err(ApiError::conflict(
            "a project needs at least one owner: make someone else owner first",
        ));
    }
    Ok(())
}

async fn change_member(
    state: web::Data<AppState>,
    authed: Authed,
    path: web::Path<(i64, i64)>,
    body: web::Json<ChangeMemberBody>,
) -> Result<HttpResponse, ApiError> {
    let (project_id, user_id) = (ProjectId(path.0), UserId(path.1));
    let (project, role) = project_for(&state, authed.user.id, project_id).await?;
    require_owner(role)?;
    check_last_owner(&state, project.id, user_id, Some(body.role)).await?;
    state.hub.store().set_role(project.id, user_id, body.role).await?;
    state.hub.member_changed(project.id, user_id, Some(body.role));
    state
        .hub
        .store()
        .audit(
            now_ms(),
            Some(authed.user.id),
            Some(project.id),
            "member.role",
            &format!("{} as {}", user_id, body.role.as_str()),
        )
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "user_id": user_id, "role": body.role })))
}

async fn remove_member(state: web::Data<AppState>, authed: Authed, path: web::Path<(i64, i64)>) -> Result<HttpResponse, ApiError> {
    let (project_id, user_id) = (ProjectId(path.0), UserId(path.1));
    let (project, role) = project_for(&state, authed.user.id, project_id).await?;
    // Anyone may leave; only an owner may remove someone else.
    if user_id != authed.user.id {
        require_owner(role)?;
    }
    check_last_owner(&state, project.id, user_id, None).await?;
    state.hub.store().remove_member(project.id, user_id).await?;
    state.hub.member_changed(project.id, user_id, None);
    state
        .hub
        .store()
        .audit(
            now_ms(),
            Some(authed.user.id),
            Some(project.id),
            "member.remove",
            &user_id.to_string(),
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
