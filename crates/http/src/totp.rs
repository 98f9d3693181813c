//! The console's second factor: time-based one-time codes (RFC 6238, HMAC-SHA-1, 30 s steps,
//! 6 digits), as any authenticator application gives them from the account's secret.

use hmac::{Hmac, KeyInit, Mac};

/// Seconds a code stands for.
const STEP_S: u64 = 30;

/// The code of `secret` for the step `step`.
fn code_of_step(secret: &[u8], step: u64) -> u32 {
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(secret) else {
        return u32::MAX;
    };
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    // RFC 4226 §5.3: dynamic truncation.
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let bits = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    bits % 1_000_000
}

/// The 6-digit code of `secret` at `unix_s` (seconds since the epoch).
pub fn code_at(secret: &[u8], unix_s: u64) -> String {
    format!("{:06}", code_of_step(secret, unix_s / STEP_S))
}

/// The step `code` is good for at `unix_s`, if any: this step, the one before or the one after
/// (a phone's clock drifts), and only a step after `used` (a code is good once).
pub(crate) fn step_of(secret: &[u8], code: &str, unix_s: u64, used: Option<u64>) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let wanted: u32 = code.parse().ok()?;
    let now = unix_s / STEP_S;
    [now.saturating_sub(1), now, now + 1]
        .into_iter()
        .filter(|step| used.is_none_or(|u| *step > u))
        // Every step is computed, so that the time says nothing of which one matched.
        .fold(None, |found, step| {
            let matches = code_of_step(secret, step) == wanted;
            found.or(matches.then_some(step))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1, its 8-digit codes cut to 6.
    #[test]
    fn the_rfc_s_test_vectors() {
        let secret = b"12345678901234567890";
        for (t, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(code_at(secret, t), code, "T = {t}");
        }
    }

    #[test]
    fn a_code_is_good_for_its_step_and_its_neighbours_once() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_111;
        let code = code_at(secret, now);
        assert_eq!(step_of(secret, &code, now, None), Some(now / 30));
        assert_eq!(step_of(secret, &code, now + 30, None), Some(now / 30));
        assert_eq!(step_of(secret, &code, now + 90, None), None, "too late");
        assert_eq!(step_of(secret, &code, now, Some(now / 30)), None, "used");
        assert_eq!(step_of(secret, "12345", now, None), None);
        assert_eq!(step_of(secret, "abcdef", now, None), None);
    }
}
