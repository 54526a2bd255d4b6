use moviola_tests::TestServer;
use moviola_tests::http::{add_member, create_project, register, request};
use serde_json::json;

#[test]
fn accounts_sign_up_in_and_out() {
    let server = TestServer::start();
    let port = server.port;
    let ana = register(port, "ana");
    let me = request(port, "GET", "/api/v1/me", Some(&ana.token), None).unwrap();
    assert_eq!((me.status, me.body["email"].as_str()), (200, Some(ana.email.as_str())));
    let dup = request(
        port,
        "POST",
        "/api/v1/auth/register",
        None,
        Some(&json!({ "email": ana.email, "password": "correct horse" })),
    )
    .unwrap();
    assert_eq!((dup.status, dup.body["error"]["code"].as_str()), (409, Some("conflict")));
    let short = request(
        port,
        "POST",
        "/api/v1/auth/register",
        None,
        Some(&json!({ "email": "x@y.z", "password": "short" })),
    )
    .unwrap();
    assert_eq!(short.status, 400);
    assert!(short.body["error"]["message"].as_str().unwrap().contains("at least"));
    let wrong = request(
        port,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({ "email": ana.email, "password": "wrong wrong" })),
    )
    .unwrap();
    assert_eq!(wrong.status, 401);
    let login = request(
        port,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({ "email": ana.email, "password": "correct horse" })),
    )
    .unwrap();
    assert_eq!(login.status, 200);
    let token = login.body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        request(port, "POST", "/api/v1/auth/logout", Some(&token), None).unwrap().status,
        204
    );
    let after = request(port, "GET", "/api/v1/me", Some(&token), None).unwrap();
    assert_eq!((after.status, after.body["error"]["code"].as_str()), (401, Some("unauthorized")));
    // The other token is still valid.
    assert_eq!(request(port, "GET", "/api/v1/me", Some(&ana.token), None).unwrap().status, 200);
    let missing = request(port, "GET", "/api/v1/projects", None, None).unwrap();
    assert_eq!(missing.status, 401);
    let unknown = request(port, "GET", "/api/v1/nowhere", None, None).unwrap();
    assert_eq!((unknown.status, unknown.body["error"]["code"].as_str()), (404, Some("not_found")));
}

#[test]
fn every_project_route_checks_the_role() {
    let server = TestServer::start();
    let port = server.port;
    let (ana, ed, vi, eve) = (
        register(port, "ana"),
        register(port, "ed"),
        register(port, "vi"),
        register(port, "eve"),
    );
    let (project, doc_id) = create_project(port, &ana, "Film");
    add_member(port, &ana, project, &ed, "editor");
    add_member(port, &ana, project, &vi, "viewer");
    let path = format!("/api/v1/projects/{project}");

    let got = request(port, "GET", &path, Some(&vi.token), None).unwrap();
    assert_eq!(
        (got.status, got.body["doc_id"].as_str(), got.body["role"].as_str()),
        (200, Some(doc_id.as_str()), Some("viewer"))
    );
    assert_eq!(got.body["doc_url"].as_str().unwrap(), format!("automerge:{doc_id}"));
    assert_eq!(
        request(port, "GET", &path, Some(&eve.token), None).unwrap().status,
        404,
        "outsider sees the project"
    );
    assert_eq!(
        request(port, "GET", "/api/v1/projects", Some(&eve.token), None).unwrap().body["projects"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    let rename = |who: &str| {
        request(port, "PATCH", &path, Some(who), Some(&json!({ "name": "New" })))
            .unwrap()
            .status
    };
    assert_eq!(rename(&vi.token), 403);
    assert_eq!(rename(&eve.token), 404);
    assert_eq!(rename(&ed.token), 200);

    let members = format!("{path}/members");
    let invite = request(
        port,
        "POST",
        &members,
        Some(&ed.token),
        Some(&json!({ "email": eve.email, "role": "viewer" })),
    )
    .unwrap();
    assert_eq!((invite.status, invite.body["error"]["code"].as_str()), (403, Some("forbidden")));
    let listed = request(port, "GET", &members, Some(&vi.token), None).unwrap();
    assert_eq!(listed.body["members"].as_array().unwrap().len(), 3);
    let promote = request(
        port,
        "PATCH",
        &format!("{members}/{}", vi.id),
        Some(&ana.token),
        Some(&json!({ "role": "editor" })),
    )
    .unwrap();
    assert_eq!(promote.status, 200);
    let last_owner = request(
        port,
        "PATCH",
        &format!("{members}/{}", ana.id),
        Some(&ana.token),
        Some(&json!({ "role": "viewer" })),
    )
    .unwrap();
    assert_eq!(last_owner.status, 409, "{}", last_owner.body);
    let bad_role = request(
        port,
        "PATCH",
        &format!("{members}/{}", vi.id),
        Some(&ana.token),
        Some(&json!({ "role": "god" })),
    )
    .unwrap();
    assert_eq!(
        (bad_role.status, bad_role.body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    assert_eq!(
        request(port, "DELETE", &format!("{members}/{}", vi.id), Some(&ed.token), None)
            .unwrap()
            .status,
        403
    );
    assert_eq!(
        request(port, "DELETE", &format!("{members}/{}", vi.id), Some(&ana.token), None)
            .unwrap()
            .status,
        204
    );
    assert_eq!(request(port, "GET", &path, Some(&vi.token), None).unwrap().status, 404);

    assert_eq!(request(port, "DELETE", &path, Some(&ed.token), None).unwrap().status, 403);
    assert_eq!(request(port, "DELETE", &path, Some(&ana.token), None).unwrap().status, 204);
    assert_eq!(request(port, "GET", &path, Some(&ana.token), None).unwrap().status, 404);
}
