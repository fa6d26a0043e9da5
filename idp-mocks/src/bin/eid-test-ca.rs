//! Generates a test Belgian eID PKI (root, Citizen CA, CRL, test cards) into a directory.
//!
//! Usage: `eid-test-ca <dir>`. See `idp_mocks::eid_ca` for the cards and the files; `<dir>/README.txt`
//! tells how to log in with curl or a browser.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use idp_mocks::eid_ca::{TestPki, P12_PASSWORD};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        bail!("usage: eid-test-ca <dir>");
    };
    if dir == "-h" || dir == "--help" {
        println!("usage: eid-test-ca <dir>\nwrites a test Belgian eID PKI (CA bundle, CRL, test cards) into <dir>");
        return Ok(());
    }
    let dir = PathBuf::from(dir);
    let pki = TestPki::generate().context("generating the test eID PKI")?;
    let written = pki.write_files(&dir)?;
    println!("wrote {} files to {}:", written.len(), dir.display());
    for path in &written {
        println!("  {}", path.display());
    }
    println!("\ncards:");
    for card in &pki.cards {
        println!(
            "  {:<10} {} {}  INSZ {}  {}",
            card.key,
            card.given_name,
            card.family_name,
            card.insz,
            if card.ec { "EC" } else { "RSA" }
        );
    }
    println!(
        "\ntrust {}/ca-bundle.pem (+ crl.pem); PKCS#12 password \"{P12_PASSWORD}\"; see README.txt",
        dir.display()
    );
    Ok(())
}
