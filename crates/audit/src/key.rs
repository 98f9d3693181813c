//! The platform's signing key: Ed25519, kept as its 32-byte secret in a file only its owner can
//! read, and its public half as a JWK (RFC 8037) a third party verifies with.
//!
//! NENA's Logging Service asks for EdDSA, and its examples name Ed448. This crate signs with
//! Ed25519, the other EdDSA curve of RFC 8037 (same `alg`, `crv` says which): `ed25519-dalek` is
//! maintained, audited and already in the platform's dependency tree, while no Rust Ed448
//! implementation has that standing. Ed25519 gives about 128-bit security, Ed448 about 224; a
//! log whose events must stay unforgeable for years is well served by either. The key types
//! below wrap the library's, so moving to Ed448 changes this file and the header, not callers.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use data_encoding::BASE64URL_NOPAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::TryRng;
use sha2::{Digest, Sha256};

/// Bytes of an Ed25519 secret key, and of its key file.
pub const SECRET_KEY_BYTES: usize = 32;

/// Permission bits a key file may not have: any access by the group or the others.
const FORBIDDEN_MODE_BITS: u32 = 0o077;

/// The secret half; never printed, wiped from memory when dropped (by `ed25519-dalek`).
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey(kid {})", self.public().thumbprint())
    }
}

impl SecretKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<SecretKey, KeyError> {
        let mut bytes = [0u8; SECRET_KEY_BYTES];
        rand::rngs::SysRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(SecretKey::from_bytes(&bytes))
    }

    /// The key whose secret is these bytes (as RFC 8037's `d`).
    pub fn from_bytes(bytes: &[u8; SECRET_KEY_BYTES]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(bytes))
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The 64-byte signature of `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

/// The public half: what `verify` needs, exportable as a JWK.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey(kid {})", self.thumbprint())
    }
}

impl PublicKey {
    /// The key from its 32 bytes (RFC 8037's `x`), refused if they are no curve point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<PublicKey, KeyError> {
        VerifyingKey::from_bytes(bytes)
            .map(PublicKey)
            .map_err(|_| KeyError::NotAKey("not an Ed25519 public key"))
    }

    /// Its 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// `x`: its bytes in base64url, as a JWK and the JWS header carry them.
    pub fn x(&self) -> String {
        BASE64URL_NOPAD.encode(self.0.as_bytes())
    }

    /// The JWK a third party verifies with: `{"crv":"Ed25519","kty":"OKP","x":…}`.
    pub fn jwk(&self) -> String {
        // The members in RFC 7638's order, with no space: the same text the thumbprint hashes.
        format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, self.x())
    }

    /// The key from a JWK (members in any order, others ignored; `d` refused, as a secret has
    /// no business in a public key's file).
    pub fn from_jwk(jwk: &str) -> Result<PublicKey, KeyError> {
        #[derive(serde::Deserialize)]
        struct Jwk<'a> {
            kty: &'a str,
            crv: &'a str,
            x: &'a str,
            d: Option<&'a str>,
        }
        let jwk: Jwk<'_> = serde_json::from_str(jwk).map_err(|_| KeyError::NotAKey("not a JWK"))?;
        if jwk.kty != "OKP" || jwk.crv != "Ed25519" {
            return Err(KeyError::NotAKey("not an OKP Ed25519 JWK"));
        }
        if jwk.d.is_some() {
            return Err(KeyError::NotAKey("a JWK with its secret (d)"));
        }
        let bytes: [u8; 32] = BASE64URL_NOPAD
            .decode(jwk.x.as_bytes())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(KeyError::NotAKey("x is not 32 bytes in base64url"))?;
        PublicKey::from_bytes(&bytes)
    }

    /// Its RFC 7638 thumbprint (base64url SHA-256 of the JWK): the `kid` of every event.
    pub fn thumbprint(&self) -> String {
        BASE64URL_NOPAD.encode(&Sha256::digest(self.jwk().as_bytes()))
    }

    /// Whether `signature` is this key's over `message`; strict (RFC 8032's checks plus no
    /// small-order key or R), so no second valid form of a signature can be made from one.
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.0
            .verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    }
}

/// Why a key could not be made, read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The operating system gave no random bytes.
    #[error("no random bytes for a new key: {0}")]
    Random(String),
    /// The bytes or JWK given are not a key.
    #[error("{0}")]
    NotAKey(&'static str),
    /// The key file may be read or written by others than its owner.
    #[error("key file {path} has mode {mode:o}: group and others must have no access (chmod 600)")]
    Exposed {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file is not 32 bytes.
    #[error("key file {path} holds {bytes} bytes, not a 32-byte Ed25519 secret")]
    WrongLength {
        /// The key file.
        path: PathBuf,
        /// What it holds.
        bytes: u64,
    },
    /// Reading or writing the key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// The key in `path`, refused if the group or others may access it or it is not 32 bytes.
pub fn read_key_file(path: &Path) -> Result<SecretKey, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    let mode = metadata.permissions().mode();
    if mode & FORBIDDEN_MODE_BITS != 0 {
        return Err(KeyError::Exposed {
            path: path.to_owned(),
            mode: mode & 0o7777,
        });
    }
    if metadata.len() != SECRET_KEY_BYTES as u64 {
        return Err(KeyError::WrongLength {
            path: path.to_owned(),
            bytes: metadata.len(),
        });
    }
    let mut bytes = [0u8; SECRET_KEY_BYTES];
    file.read_exact(&mut bytes).map_err(io)?;
    Ok(SecretKey::from_bytes(&bytes))
}

/// The key in `path`, made there (mode 0600) the first time: a node keeps one key for life.
///
/// The new key is written to a temporary file, synced, then linked to `path`, which fails if
/// `path` appeared meanwhile: a crash leaves either no key or a whole one, never a torn one, and
/// two processes starting together end up with the same key.
pub fn load_or_create_key_file(path: &Path) -> Result<SecretKey, KeyError> {
    match read_key_file(path) {
        Err(KeyError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {}
        other => return other,
    }
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let key = SecretKey::generate()?;
    let temporary = path.with_extension(format!("new-{}", std::process::id()));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(key.0.as_bytes())?;
        file.sync_all()
    })();
    let linked = written.and_then(|()| fs::hard_link(&temporary, path));
    // The temporary name goes whatever happened; the key, if linked, lives on under `path`.
    let _ = fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            sync_parent(path).map_err(io)?;
            Ok(key)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => read_key_file(path),
        Err(e) => Err(io(e)),
    }
}

/// Makes a new name in a directory survive a crash (the name lives in the directory's data).
pub(crate) fn sync_parent(path: &Path) -> std::io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8037, appendix A: the key (A.1), its thumbprint (A.3) and a signature (A.4).
    #[test]
    fn the_rfc_8037_examples() {
        let d: [u8; 32] = BASE64URL_NOPAD
            .decode(b"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
            .unwrap()
            .try_into()
            .unwrap();
        let key = SecretKey::from_bytes(&d);
        let public = key.public();
        assert_eq!(public.x(), "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
        assert_eq!(
            public.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
        let signing_input = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
        let signature = key.sign(signing_input);
        assert_eq!(
            BASE64URL_NOPAD.encode(&signature),
            "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        );
        assert!(public.verifies(signing_input, &signature));
        assert!(!public.verifies(b"eyJhbGciOiJFZERTQSJ9.X", &signature));
    }

    #[test]
    fn generated_keys_differ() {
        let a = SecretKey::generate().unwrap().public();
        let b = SecretKey::generate().unwrap().public();
        assert_ne!(a, b);
    }
}
