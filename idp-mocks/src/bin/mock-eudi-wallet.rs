//! The test EU wallet's command for the cross-device flow: answers the `openid4vp://` URI of a
//! broker's QR code with a demo citizen's PID, through the running test wallet (`make demo`
//! starts it on http://localhost:8098).
//!
//! ```text
//! mock-eudi-wallet answer [--wallet http://localhost:8098] [--holder nl-sanne] [--format mso_mdoc] 'openid4vp://?client_id=…&request_uri=…'
//! ```
//! Holders: nl-sanne, be-anna, de-erika, nl-revoked. Formats: dc+sd-jwt (default), mso_mdoc.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    anyhow::ensure!(
        args.next().as_deref() == Some("answer"),
        "usage: mock-eudi-wallet answer [--wallet URL] [--holder KEY] [--format mso_mdoc] URI"
    );
    let (mut wallet, mut holder, mut uri) =
        ("http://localhost:8098".to_string(), "nl-sanne".to_string(), None);
    let mut format = "dc+sd-jwt".to_string();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--wallet" => wallet = args.next().unwrap_or(wallet),
            "--holder" => holder = args.next().unwrap_or(holder),
            "--format" => format = args.next().unwrap_or(format),
            _ => uri = Some(a),
        }
    }
    let uri =
        uri.ok_or_else(|| anyhow::anyhow!("the openid4vp:// URI of the QR code is missing"))?;
    let resp = reqwest::Client::new()
        .post(format!("{}/answer", wallet.trim_end_matches('/')))
        .json(&serde_json::json!({ "holder": holder, "uri": uri, "format": format }))
        .send()
        .await?;
    let status = resp.status();
    let text = resp.text().await?;
    println!("{status} {text}");
    anyhow::ensure!(status.is_success(), "the wallet could not answer");
    Ok(())
}
