#![no_main]
//! JWS compact tokens on arbitrary bytes (what any caller may present to the broker):
//! `jose::peek` and `jose::verify`, against a fixed JWKS with one key of each type
//! (RS256, ES256, ES384, EdDSA), never panic; a token that verifies also peeks, and its
//! claims hold what `Expect` asked for.
use keyward_broker::jose::{self, Expect, JwkSet};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

/// The public keys of the seeds' signers (fuzz/seed.sh): the RSA key of
/// crates/broker/tests/data/rsa2048.pk8 and keys generated once for this target.
const JWKS: &str = r#"{"keys":[{"kty":"RSA","kid":"rsa","alg":"RS256","use":"sig","n":"p3lNr_3VyPNXJFLBJqPYersAGPJsoOFiYjD5mugRnYtArtRZYXmuk9nTcVZBaoTv4iwVMUu2ehNQWyOvLz-JK8FQYHjTiw82zDex_uKTozYs3h6PbQKgOwiQYWZ0QD5RixNoVnFhSk31Sj4u-wqa02n_Xoc6HABCZVmPTQRiyy9z2XmEP_Ebnyk7LTuNS3ILyRghgbHmwTmwlHocZtd03q55jaqDvm8wOX4n4N1TxyZCQRz2wHODh7R6bFZmLv5za9M9kMEv423iWDoQ0cJRLuLknvA5pK3ZSRp006mizFjA_DN-Cbr-eEuPGGJGjvm2BUk8rUqezGGmz-opfXzy_w","e":"AQAB"},{"kty":"EC","kid":"p256","alg":"ES256","use":"sig","crv":"P-256","x":"3fCK-UidMGuhXytuWNrYunplN7OjLJU84pouXDUzY6w","y":"CXV9IGvSBYCWLsCHdlHGin0nhAmIlYaglTWRJwsdsg8"},{"kty":"EC","kid":"p384","crv":"P-384","x":"L48O7HnvhGbMnMJ3UlorigDrwlsUYHyTU7tZK7K8H_tVEqCoYZe5llCdBSlnOOSI","y":"UAsxEd6cE0EOUtIZ9oy0WctYrCilqBTCbjt5QEjaPoJfoFKVAfASdGCRZvyBtweo"},{"kty":"OKP","kid":"ed","crv":"Ed25519","x":"Q4seFoOJ3GrzX6GPjr-9wfpqWLSIz-HgbaFmVhrr2b8"}]}"#;

static KEYS: LazyLock<JwkSet> =
    LazyLock::new(|| serde_json::from_str(JWKS).expect("the fixed JWKS parses"));

const ISSUER: &str = "https://issuer.example";
const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let peeked = jose::peek(token);
    let audiences = ["keyward".to_string()];
    let Ok(claims) = jose::verify(token, &KEYS, &Expect::new(ISSUER, &audiences, NOW)) else {
        return;
    };
    assert!(peeked.is_ok());
    assert_eq!(claims.iss, ISSUER);
    assert!(claims.aud.iter().any(|a| a == "keyward"));
    assert!(claims.exp > NOW - jose::DEFAULT_LEEWAY_SECS);
});
