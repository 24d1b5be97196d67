//! Cryptle natively on plain HTTP, for working on the page without a Keep:
//! `cargo run --example native -- 127.0.0.1:8080`. Not for deployment: no TLS, no Keep.

use cryptle::{OsEntropy, Server, os_seed, settings_from};
use cryptle_game::App;

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let lookup = |name: &str| std::env::var(name).ok();
    let (limits, app_config) = settings_from(&lookup).expect("settings");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
        eprintln!(
            "cryptle (native, plain HTTP) on http://{}",
            listener.local_addr().expect("addr")
        );
        let app = App::new(app_config, os_seed(), Box::new(OsEntropy));
        Server::new(app, limits).serve(listener).await;
    });
}
