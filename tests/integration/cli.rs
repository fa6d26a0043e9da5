//! The command line as operators use it: exit codes, JSON output, config errors naming the key.

use crate::common::*;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cozo-broker"))
}

#[tokio::test]
async fn bad_config_exits_2_naming_the_key() {
    let out = bin().args(["migrate"]).env("COZO_SERVER__LISTEN", "nowhere").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.listen"), "{err}");
    let out = bin().args(["client", "frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// The one JSON object an error prints on standard error with `--json` (nothing else there, and
/// nothing on standard output).
fn json_error(out: &std::process::Output) -> serde_json::Value {
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    serde_json::from_str(err.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {err}"))
}

#[tokio::test]
async fn errors_with_json_are_one_json_object_with_the_same_exit_code() {
    // A configuration error names the setting (exit 2).
    let out =
        bin().args(["migrate", "--json"]).env("COZO_SERVER__LISTEN", "nowhere").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = json_error(&out);
    assert_eq!(e["key"], "server.listen", "{e}");
    assert!(e["error"].as_str().unwrap().contains("server.listen"), "{e}");
    // A usage error clap finds: an unknown subcommand, a missing option (exit 2).
    let out = bin().args(["client", "frobnicate", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = json_error(&out);
    assert_eq!(e["key"], "frobnicate", "{e}");
    let out = bin().args(["--json", "person", "show"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_error(&out)["key"], "--insz");
    // A value the command refuses, before any database is opened.
    let out = bin().args(["totp-code", "not base32!", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_error(&out)["key"], "secret");
    // A runtime failure (the database cannot be created): exit 1, no key.
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "").unwrap();
    let out = bin()
        .args(["person", "show", "--insz", "85073003328", "--json"])
        .env("COZO_DATABASE__URL", format!("sqlite://{}/db.sqlite", not_a_dir.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = json_error(&out);
    assert!(e["key"].is_null(), "{e}");
    assert!(!e["error"].as_str().unwrap().is_empty());
    // Without --json, the same failures stay plain text.
    let out = bin().args(["client", "frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(serde_json::from_slice::<serde_json::Value>(&out.stderr).is_err());
}

async fn scripted_first_login(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = database_url(backend, dir.path()).await;
    let key_file = dir.path().join("master.key");
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut c = bin();
        c.args(args)
            .env("COZO_DATABASE__URL", &db)
            .env("COZO_SECRETS__MASTER_KEY_FILE", &key_file)
            .env("COZO_POLICY__DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/policies"))
            .current_dir(dir.path());
        if let Some(pw) = stdin {
            c.env("COZO_PASSWORD", pw);
        }
        let out = c.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, out, err) = run(
        &[
            "client",
            "add",
            "--id",
            "APP",
            "--redirect-uri",
            "http://localhost:9/cb",
            "--policy",
            "portal",
            "--json",
        ],
        None,
    );
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["client_id"], "APP");
    assert_eq!(v["client_secret"].as_str().unwrap().len(), 43);
    // SPEC §11: the name people see, the back-channel logout URI, DPoP required.
    let app2 = [
        "client",
        "add",
        "--id",
        "APP2",
        "--redirect-uri",
        "http://localhost:9/cb2",
        "--name",
        "Health portal",
        "--backchannel-logout-uri",
        "http://localhost:9/logout",
        "--dpop",
        "--json",
    ];
    let (code, _, err) = run(&app2, None);
    assert_eq!(code, Some(0), "{err}");
    let mut bad = app2.to_vec();
    bad[3] = "APP3";
    bad[9] = "http://app.example/logout";
    let (code, _, err) = run(&bad, None);
    assert_eq!(code, Some(2));
    let e: serde_json::Value = serde_json::from_str(err.trim()).unwrap();
    assert_eq!(e["key"], "--backchannel-logout-uri", "{e}");
    // Again: a conflict is a usage error, naming the option (one JSON object with --json).
    let (code, out, err) = run(
        &["client", "add", "--id", "APP", "--redirect-uri", "http://localhost:9/cb", "--json"],
        None,
    );
    assert_eq!(code, Some(2));
    assert!(out.is_empty(), "{out}");
    let e: serde_json::Value = serde_json::from_str(err.trim()).unwrap();
    assert_eq!(e["key"], "--id", "{e}");
    assert!(e["error"].as_str().unwrap().contains("already exists"), "{e}");
    let (code, _, err) = run(
        &["person", "add", "--insz", "85073003329", "--given-name", "A", "--family-name", "B"],
        None,
    );
    assert_eq!(code, Some(2), "invalid INSZ");
    assert!(err.contains("check digits"), "{err}");
    let (code, _, err) = run(&["person", "show", "--insz", "85073003329", "--json"], None);
    assert_eq!(code, Some(2));
    let e: serde_json::Value = serde_json::from_str(err.trim()).unwrap();
    assert_eq!(e["key"], "--insz", "{e}");
    assert!(e["error"].as_str().unwrap().contains("check digits"), "{e}");
    let (code, _, err) = run(
        &[
            "person",
            "add",
            "--insz",
            "85073003328",
            "--given-name",
            "Anna",
            "--family-name",
            "Peeters",
            "--birthdate",
            "1985-07-30",
        ],
        None,
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = run(
        &["key", "add-totp", "--insz", "85073003328", "--username", "anna", "--json"],
        Some("correct horse battery"),
    );
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(v["otpauth_uri"].as_str().unwrap().starts_with("otpauth://totp/"));
    let secret = v["secret"].as_str().unwrap();
    let (code, out, _) = run(&["totp-code", secret], None);
    assert_eq!(code, Some(0));
    assert_eq!(out.trim().len(), 6);
    let (code, out, _) = run(&["key", "list", "--insz", "85073003328", "--json"], None);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["keys"][0]["kind"], "totp");
    let (code, out, _) = run(&["keys", "rotate", "--json"], None);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["kids"].as_array().unwrap().len(), 3);
    let (code, out, _) = run(&["client", "list", "--json"], None);
    assert_eq!(code, Some(0));
    assert!(!out.contains("secret_hash"));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let app2 = v["clients"].as_array().unwrap().iter().find(|c| c["client_id"] == "APP2").cloned();
    let app2 = app2.expect("APP2 is listed");
    assert_eq!(app2["name"], "Health portal");
    assert_eq!(app2["backchannel_logout_uri"], "http://localhost:9/logout");
    assert_eq!(app2["dpop"], true);
    let (code, _, _) = run(&["key", "revoke", "--insz", "85073003328", "--all"], None);
    assert_eq!(code, Some(0));
    // Offices: an operator, then a registration from the command line.
    let (code, _, err) =
        run(&["office", "operator", "add", "85073003328", "--office", "Desk 1"], None);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) =
        run(&["office", "operator", "add", "90010112395", "--office", "Desk 1"], None);
    assert_eq!(code, Some(2), "an unknown person cannot be an operator");
    assert!(err.contains("person add"), "{err}");
    let register = |insz: &'static str, email: &'static str| {
        vec![
            "office",
            "register",
            "--operator",
            "85073003328",
            "--insz",
            insz,
            "--family-name",
            "Rossi",
            "--given-names",
            "Sofia",
            "--birthdate",
            "1985-07-30",
            "--nationality",
            "IT",
            "--document-type",
            "passport",
            "--document-number",
            "YA1234567",
            "--email",
            email,
            "--mobile",
            "+393331234567",
            "--json",
        ]
    };
    let (code, out, err) = run(&register("85273004559", "sofia@example.it"), None);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["status"], "issued");
    assert_eq!(v["activation_code"].as_str().unwrap().len(), 14);
    assert!(v["activation_link"].as_str().unwrap().contains("/activate/"));
    let (code, _, err) = run(&register("85273004559", "sofia@example.it"), None);
    assert_eq!(code, Some(2), "a duplicate is a usage error");
    assert!(err.contains("live registration"), "{err}");
    let (code, _, err) = run(&register("85273004558", "not-an-email"), None);
    assert_eq!(code, Some(2));
    assert!(err.contains("--insz") && err.contains("--email"), "{err}");
    let (code, out, _) = run(&["audit", "export"], None);
    assert_eq!(code, Some(0));
    // Audit export carries the registration, never the code.
    assert!(out.contains("office_registration"), "{out}");
    assert!(!out.contains(v["activation_code"].as_str().unwrap()));
}

crate::both_backends!(scripted_first_login);

/// `policy check` agrees with itself: every method whose login the policy allows is in
/// `methods`, eID, eIDAS, FAS means and WebAuthn included, whatever the configuration switches
/// on; `offered` is the part the configuration switches on, all of it when everything is.
async fn policy_check_lists_every_method_it_allows(backend: Backend) {
    let s = TestServer::start(backend).await;
    s.add_client("portal-app", "portal").await;
    s.add_client("ehealth-app", "ehealth").await;
    s.add_person("85073003328", "anna").await;
    let check = |client: &str, method: &str, full: bool| {
        let mut c = bin();
        c.args(["policy", "check", "--client", client, "--insz", "85073003328"])
            .args(["--method", method, "--json"])
            .env("COZO_DATABASE__URL", &s.handle.cfg.database.url)
            .env("COZO_POLICY__DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/policies"))
            // An address, not a domain name: the server would not offer WebAuthn.
            .env("COZO_SERVER__PUBLIC_URL", "http://127.0.0.1:8080");
        if full {
            c.env("COZO_SERVER__PUBLIC_URL", "https://login.cozo.example")
                .env("COZO_EID__CA_BUNDLE", "/etc/cozo/eid-ca.pem")
                .env("COZO_FAS__ISSUER", "https://fas.example/fas/oauth2")
                .env("COZO_EIDAS__NODE_METADATA", "/etc/cozo/node.xml")
                .env("COZO_EUDIW__ENABLED", "true")
                .env("COZO_EUDIW__TRUST_ANCHORS", "/etc/cozo/pid-providers.pem");
        }
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let names = |v: &serde_json::Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_string()).collect()
    };
    for client in ["portal-app", "ehealth-app"] {
        for full in [false, true] {
            for method in ["eid", "totp", "webauthn", "sms", "token", "eidas", "itsme"] {
                let out = check(client, method, full);
                let methods = names(&out["methods"]);
                for m in ["eid", "webauthn", "eidas", "itsme", "totp"] {
                    assert!(methods.contains(&m.to_string()), "{client} {method}: {out}");
                }
                if out["decision"] == "allow" {
                    assert!(methods.contains(&method.to_string()), "{client} {method}: {out}");
                }
                let offered = names(&out["offered"]);
                assert!(offered.iter().all(|o| methods.contains(o)), "{out}");
                if full {
                    assert_eq!(offered, methods, "{client} {method}");
                } else {
                    assert!(!offered.iter().any(|o| o == "eid" || o == "webauthn"), "{out}");
                }
            }
        }
        // The shipped policies: portal allows every method, ehealth neither SMS nor token.
        let portal = check(client, "sms", false);
        if client == "portal-app" {
            assert_eq!(portal["decision"], "allow");
            assert!(names(&portal["methods"]).contains(&"sms".to_string()));
        } else {
            assert_eq!(portal["decision"], "step_up");
            assert!(!names(&portal["methods"]).iter().any(|m| m == "sms" || m == "token"));
        }
    }
}

crate::both_backends!(policy_check_lists_every_method_it_allows);
