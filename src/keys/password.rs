//! Passwords: argon2id, hashed and verified on the blocking pool (they cost ~20 ms of a core).

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};

#[derive(Debug, Clone, Copy)]
pub struct Cost {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

fn argon(cost: Cost) -> Result<Argon2<'static>, argon2::Error> {
    Ok(Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(cost.m_kib, cost.t, cost.p, None)?,
    ))
}

pub fn hash(cost: Cost, password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    argon(cost)
        .map_err(|e| e.to_string())?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Verifies with the parameters stored in the hash (older hashes keep working after a cost
/// change). Constant-time comparison is argon2's.
pub fn verify(stored: &str, password: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(h) => Argon2::default().verify_password(password.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

/// Whether `stored` is an argon2id (v1.3) hash made with exactly `cost`: verifying it then costs
/// what verifying the dummy hash of an unknown username costs.
pub fn uses_cost(stored: &str, cost: Cost) -> bool {
    let Ok(h) = PasswordHash::new(stored) else { return false };
    let Ok(params) = Params::try_from(&h) else { return false };
    h.algorithm == Algorithm::Argon2id.ident()
        && h.version == Some(Version::V0x13.into())
        && (params.m_cost(), params.t_cost(), params.p_cost()) == (cost.m_kib, cost.t, cost.p)
}

/// Argon2 runs on a small pool of dedicated threads, one per core: at most that many hashes
/// (19 MiB each) are in memory at once, the allocator keeps their memory in those threads only,
/// and a flood of logins queues instead of taking every core and gigabytes of memory.
type Job = Box<dyn FnOnce() + Send>;

fn hasher() -> &'static std::sync::Mutex<std::sync::mpsc::Sender<Job>> {
    static POOL: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<Job>>> =
        std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        for i in 0..n {
            let rx = rx.clone();
            let _ = std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || loop {
                let job = match rx.lock() {
                    Ok(guard) => guard.recv(),
                    Err(_) => return,
                };
                match job {
                    Ok(job) => job(),
                    Err(_) => return,
                }
            });
        }
        std::sync::Mutex::new(tx)
    })
}

async fn on_hasher<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    hasher().lock().ok()?.send(job).ok()?;
    rx.await.ok()
}

pub async fn hash_blocking(cost: Cost, password: String) -> Result<String, String> {
    on_hasher(move || hash(cost, &password))
        .await
        .ok_or_else(|| "hashing pool stopped".to_string())?
}

pub async fn verify_blocking(stored: String, password: String) -> bool {
    on_hasher(move || verify(&stored, &password)).await.unwrap_or(false)
}

/// Password rules for new passwords (SPEC §7, issue #3): at least 12 characters, not containing
/// the username, not among the most common passwords.
pub fn check_new(password: &str, username: &str) -> Result<(), &'static str> {
    if password.chars().count() < 12 {
        return Err("password-too-short");
    }
    if password.chars().count() > 256 {
        return Err("password-too-long");
    }
    let lower = password.to_lowercase();
    if !username.is_empty() && lower.contains(&username.to_lowercase()) {
        return Err("password-contains-username");
    }
    if COMMON.iter().any(|c| lower == *c) {
        return Err("password-too-common");
    }
    Ok(())
}

/// The commonest passwords of 12+ characters in public breach lists.
const COMMON: &[&str] = &[
    "123456789012",
    "1234567890123",
    "12345678910",
    "qwertyuiopas",
    "password1234",
    "passwordpassword",
    "iloveyou1234",
    "qwerty123456",
    "azertyuiop12",
    "welkom123456",
    "wachtwoord123",
    "motdepasse123",
    "passwort1234",
    "123456123456",
    "111111111111",
    "000000000000",
    "abcdefghijkl",
    "abc123abc123",
    "administrator",
    "letmein12345",
    "football1234",
    "princess1234",
    "sunshine1234",
    "baseball1234",
    "starwars1234",
];

#[cfg(test)]
mod tests {
    use super::*;

    const COST: Cost = Cost { m_kib: 19456, t: 2, p: 1 };

    #[test]
    fn hash_is_argon2id_with_the_floor_cost_and_verifies() {
        let h = hash(COST, "correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify(&h, "correct horse battery"));
        assert!(!verify(&h, "correct horse batterY"));
        assert!(!verify("not a hash", "x"));
    }

    #[test]
    fn a_hash_tells_whether_it_has_the_configured_cost() {
        let h = hash(COST, "correct horse battery").unwrap();
        assert!(uses_cost(&h, COST));
        assert!(!uses_cost(&h, Cost { t: 3, ..COST }));
        assert!(!uses_cost(&h, Cost { m_kib: 32768, ..COST }));
        assert!(!uses_cost("not a hash", COST));
    }

    #[tokio::test]
    async fn the_hashing_pool_serves_concurrent_callers() {
        let hashes = futures::future::join_all(
            (0..4).map(|i| hash_blocking(COST, format!("password number {i}"))),
        )
        .await;
        for (i, h) in hashes.into_iter().enumerate() {
            let h = h.unwrap();
            assert!(verify_blocking(h.clone(), format!("password number {i}")).await);
            assert!(!verify_blocking(h, "wrong".into()).await);
        }
    }

    #[test]
    fn new_password_rules() {
        assert_eq!(check_new("short", "anna"), Err("password-too-short"));
        assert_eq!(check_new("anna-is-my-name-1", "anna"), Err("password-contains-username"));
        assert_eq!(check_new("Password1234", "bob"), Err("password-too-common"));
        assert_eq!(check_new("blue tram at 8 o'clock", "bob"), Ok(()));
    }
}
