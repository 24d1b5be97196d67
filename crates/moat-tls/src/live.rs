//! An identity that can be replaced while the TLS configurations made from it stay in use.
//!
//! A Steward certifies a Keep for a limited time (an hour by default), while a workload may
//! serve for days; so the Keep renews its certificate and every later handshake, on listeners
//! and on `connect` sockets alike, must present the new one without rebuilding the
//! configurations the sockets hold. [`server_config`](crate::server_config) and
//! [`client_config`](crate::client_config) therefore pick the certificate per handshake from a
//! [`LiveIdentity`]. A fixed [`Identity`] converts into one that is simply never replaced.

use std::fmt;
use std::sync::{Arc, RwLock};

use rustls::client::ResolvesClientCert;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::Identity;

/// A shared, replaceable [`Identity`]; clones share it, so a replacement reaches every TLS
/// configuration made from any clone.
#[derive(Clone)]
pub struct LiveIdentity {
    current: Arc<RwLock<Identity>>,
}

impl fmt::Debug for LiveIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveIdentity").finish_non_exhaustive()
    }
}

impl LiveIdentity {
    pub fn new(identity: Identity) -> Self {
        LiveIdentity {
            current: Arc::new(RwLock::new(identity)),
        }
    }

    /// The identity handshakes present now.
    pub fn current(&self) -> Identity {
        self.read().clone()
    }

    /// Present `identity` from the next handshake on; connections already made keep theirs.
    pub fn replace(&self, identity: Identity) {
        // A poisoned lock only means a reader panicked while cloning; the value is whole.
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = identity;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Identity> {
        self.current.read().unwrap_or_else(|e| e.into_inner())
    }

    fn certified_key(&self) -> Arc<CertifiedKey> {
        self.read().certified_key()
    }

    /// rustls's view for a server: the certificate held at each handshake. For server
    /// configurations built outside [`server_config`](crate::server_config).
    pub fn server_resolver(&self) -> Arc<dyn ResolvesServerCert> {
        Arc::new(Resolver(self.clone()))
    }

    pub(crate) fn client_resolver(&self) -> Arc<dyn ResolvesClientCert> {
        Arc::new(Resolver(self.clone()))
    }
}

impl From<Identity> for LiveIdentity {
    fn from(identity: Identity) -> Self {
        LiveIdentity::new(identity)
    }
}

impl From<&Identity> for LiveIdentity {
    fn from(identity: &Identity) -> Self {
        LiveIdentity::new(identity.clone())
    }
}

impl From<&LiveIdentity> for LiveIdentity {
    fn from(live: &LiveIdentity) -> Self {
        live.clone()
    }
}

/// rustls's view of a [`LiveIdentity`]: whatever it holds at handshake time.
#[derive(Debug)]
struct Resolver(LiveIdentity);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.certified_key())
    }
}

impl ResolvesClientCert for Resolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.certified_key())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
