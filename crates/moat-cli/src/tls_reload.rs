//! `SIGHUP` makes a server re-read its `--tls-cert` and `--tls-key`, so a renewed certificate
//! (an ACME client's, say) is served without a restart. The files are read whole and checked
//! (the key must match the chain) before anything changes; a bad pair leaves the current
//! certificate in place and says why. Connections already open keep the certificate they got.

use std::path::PathBuf;

use moat_tls::{Identity, LiveIdentity};

/// Reload `live` from `cert` and `key` on every `SIGHUP`, until the runtime stops. `server`
/// names the server in the log.
pub fn reload_on_sighup(
    server: &'static str,
    cert: PathBuf,
    key: PathBuf,
    live: LiveIdentity,
) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use anyhow::Context as _;
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = signal(SignalKind::hangup()).context("installing a SIGHUP handler")?;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match Identity::load_pem(&cert, &key) {
                    Ok(identity) => {
                        live.replace(identity);
                        tracing::info!(
                            cert = %cert.display(),
                            "{server}: reloaded the TLS certificate"
                        );
                    }
                    Err(e) => tracing::error!(
                        cert = %cert.display(),
                        key = %key.display(),
                        error = %e,
                        "{server}: cannot reload the TLS certificate; keeping the current one"
                    ),
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (server, cert, key, live);
    Ok(())
}
