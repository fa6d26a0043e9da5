//! The database connection can be encrypted (issue #15 item 6): with
//! `sslmode=verify-full&sslrootcert=<CA>` in the URL the store speaks TLS to PostgreSQL and
//! accepts only a server certificate from that CA for that host. Each test starts a private
//! PostgreSQL server that accepts TCP connections over TLS only, with a certificate from a
//! throw-away CA made here.

use cozo_broker::store::{DatabaseLink, Store, StoreError};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A throw-away certificate authority.
fn certificate_authority(name: &str) -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap()
}

/// A server certificate issued by `ca` for `names` (DNS names or IP addresses): (cert, key) PEM.
fn server_certificate(
    ca: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    names: &[&str],
) -> (String, String) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names.clone()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, names[0].as_str());
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// The directory of PostgreSQL's server programs (`initdb`, `pg_ctl`), newest version first.
fn postgres_bin_dir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .unwrap_or_else(|e| {
            panic!("the PostgreSQL server programs are required ({}: {e})", root.display())
        })
        .filter_map(|d| {
            let d = d.ok()?;
            let version = d.file_name().to_str()?.parse().ok()?;
            let bin = d.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .unwrap_or_else(|| panic!("no {}/<version>/bin/initdb: install postgresql", root.display()))
}

fn running_as_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// A private PostgreSQL server in a temporary directory, stopped (and removed) on drop, even when
/// the test fails. PostgreSQL refuses to run as root: as root, it runs as the `postgres` user.
struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    as_postgres_user: bool,
    port: u16,
    ca_file: PathBuf,
    dir: tempfile::TempDir,
}

impl PrivatePostgres {
    /// Starts a server presenting `server_cert` over TLS; plain-text TCP is refused
    /// (`hostssl` only). Writes `ca_pem` beside it for the clients.
    fn start(ca_pem: &str, (server_cert, server_key): (String, String)) -> Self {
        let bin = postgres_bin_dir();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::write(dir.path().join("server.crt"), server_cert).unwrap();
        std::fs::write(dir.path().join("server.key"), server_key).unwrap();
        std::fs::write(dir.path().join("ca.crt"), ca_pem).unwrap();
        set_mode(&dir.path().join("server.key"), 0o600);
        let as_postgres_user = running_as_root();
        if as_postgres_user {
            let chown = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(chown.success(), "chown to postgres");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server =
            Self { bin, data, as_postgres_user, port, ca_file: dir.path().join("ca.crt"), dir };
        server.run(
            "initdb",
            &[
                "-D",
                path(&server.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "--encoding=UTF8",
                "--locale=C",
            ],
        );
        let d = server.dir.path().display();
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(server.data.join("postgresql.conf"))
            .unwrap();
        use std::io::Write;
        writeln!(
            conf,
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{d}'\n\
             ssl = on\nssl_cert_file = '{d}/server.crt'\nssl_key_file = '{d}/server.key'\n\
             fsync = off"
        )
        .unwrap();
        // TCP clients must use TLS; the socket is for pg_ctl.
        std::fs::write(
            server.data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        )
        .unwrap();
        let log = server.dir.path().join("server.log");
        let started = server
            .command("pg_ctl")
            .arg("-D")
            .arg(&server.data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "start"])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(
            started.success(),
            "PostgreSQL did not start:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        server
    }

    /// A database URL for this server over TCP with the given TLS options.
    fn url(&self, host: &str, tls: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?{tls}", self.port)
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self.command(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temporary path")
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Writes a CA certificate the server's certificate does not come from.
fn other_ca_file(dir: &Path) -> PathBuf {
    let file = dir.join("other-ca.crt");
    std::fs::write(&file, certificate_authority("Someone else's CA").pem()).unwrap();
    file
}

fn assert_refused(result: Result<Store, StoreError>, why: &str) {
    match result {
        Ok(_) => panic!("connected although {why}"),
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains("certificate"), "refused for the certificate ({why}), not: {e}");
        }
    }
}

#[tokio::test]
async fn the_store_connects_over_tls_verified_against_the_configured_ca() {
    let ca = certificate_authority("CoZo test database CA");
    let pg =
        PrivatePostgres::start(&ca.pem(), server_certificate(&ca, &["127.0.0.1", "localhost"]));
    let url =
        pg.url("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={}", path(&pg.ca_file)));
    let store = Store::connect(&url, 4).await.expect("connects over verified TLS");
    assert_eq!(
        store.database_link().await.unwrap(),
        Some(DatabaseLink { encrypted: true, unix_socket: false }),
        "the server sees a TLS connection"
    );
    // The whole schema goes over it.
    store.migrate().await.expect("migrates over TLS");
    store.ping().await.unwrap();
    store.close().await;

    // The server takes no plain text, so the check above is the only way in.
    let plain = Store::connect(&pg.url("127.0.0.1", "sslmode=disable"), 1).await;
    assert!(plain.is_err(), "plain-text TCP must be refused by this server");
}

#[tokio::test]
async fn a_server_certificate_from_another_ca_is_refused() {
    let ca = certificate_authority("CoZo test database CA");
    let pg =
        PrivatePostgres::start(&ca.pem(), server_certificate(&ca, &["127.0.0.1", "localhost"]));
    let wrong_ca = other_ca_file(pg.dir.path());
    assert_refused(
        Store::connect(
            &pg.url("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={}", path(&wrong_ca))),
            1,
        )
        .await,
        "the server's certificate is not from sslrootcert",
    );
    assert_refused(
        Store::connect(
            &pg.url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={}", path(&wrong_ca))),
            1,
        )
        .await,
        "verify-ca with the wrong CA",
    );
    // Without sslrootcert only public roots are trusted, and they did not issue it.
    assert_refused(
        Store::connect(&pg.url("127.0.0.1", "sslmode=verify-full"), 1).await,
        "no sslrootcert names the throw-away CA",
    );
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_for_another_host() {
    let ca = certificate_authority("CoZo test database CA");
    // A genuine certificate from the right CA, for the name `localhost` only.
    let pg = PrivatePostgres::start(&ca.pem(), server_certificate(&ca, &["localhost"]));
    let tls = format!("sslmode=verify-full&sslrootcert={}", path(&pg.ca_file));
    assert_refused(
        Store::connect(&pg.url("127.0.0.1", &tls), 1).await,
        "the certificate does not name 127.0.0.1",
    );
    // The same server under the name in its certificate: accepted, so it was the name.
    let store = Store::connect(&pg.url("localhost", &tls), 1).await.expect("by its name");
    assert_eq!(
        store.database_link().await.unwrap(),
        Some(DatabaseLink { encrypted: true, unix_socket: false })
    );
    store.close().await;
}
