//! Argon2id password hashing with parameters stored in the vault config.

use super::secret::{Key32, Password};

/// Argon2id cost parameters, recorded in the key slot (docs/FORMAT.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Argon2Params {
    /// Defaults for new password slots: 64 MiB, 3 passes, 4 lanes.
    pub const DEFAULT: Argon2Params = Argon2Params {
        m_kib: 64 * 1024,
        t: 3,
        p: 4,
    };

    /// Lowest parameters a vault may be opened with. Protects against a
    /// config edited to make guessing cheap (the params are also
    /// authenticated by the key wrap, so this is belt and braces).
    pub const MIN: Argon2Params = Argon2Params {
        m_kib: 8 * 1024,
        t: 1,
        p: 1,
    };

    /// Upper bounds so a hostile config cannot make us allocate 4 TiB.
    pub const MAX: Argon2Params = Argon2Params {
        m_kib: 4 * 1024 * 1024,
        t: 64,
        p: 64,
    };

    /// The highest cost a password slot is tried with on a machine that
    /// remembers nothing of the vault (1 GiB, 16 passes, 8 lanes; `quire
    /// init` never makes more): a config raised above it is refused before
    /// Argon2 runs, not tried for minutes (issue 17.4, docs/CLI.md).
    pub const CEILING: Argon2Params = Argon2Params {
        m_kib: 1024 * 1024,
        t: 16,
        p: 8,
    };

    /// Whether any of these costs is above the same cost of `limit`.
    pub fn exceeds(&self, limit: &Argon2Params) -> bool {
        self.m_kib > limit.m_kib || self.t > limit.t || self.p > limit.p
    }

    /// Whether these parameters lie within [MIN, MAX].
    pub fn in_bounds(&self) -> bool {
        (Self::MIN.m_kib..=Self::MAX.m_kib).contains(&self.m_kib)
            && (Self::MIN.t..=Self::MAX.t).contains(&self.t)
            && (Self::MIN.p..=Self::MAX.p).contains(&self.p)
    }
}

/// Derives the 256-bit key-encryption key of a password slot.
pub fn password_kek(password: &Password, salt: &[u8; 16], params: Argon2Params) -> Key32 {
    let p = argon2::Params::new(params.m_kib, params.t, params.p, Some(32))
        .expect("parameters validated by in_bounds");
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let mut out = [0u8; 32];
    a.hash_password_into(password.expose(), salt, &mut out)
        .expect("salt and output lengths are valid");
    Key32::from_bytes(&mut out)
}

/// Derives the key-encryption key of a recovery slot (the recovery key has
/// full entropy, so HKDF suffices).
pub fn recovery_kek(recovery_key: &Key32, salt: &[u8; 16]) -> Key32 {
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), recovery_key.expose());
    let mut out = [0u8; 32];
    hk.expand(super::labels::KEK_RECOVERY, &mut out)
        .expect("HKDF output length is a small constant");
    Key32::from_bytes(&mut out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_known_answer() {
        // Fixed inputs at the minimum parameters; the value pins the exact
        // algorithm (Argon2id v1.3) so a dependency change cannot silently
        // change how passwords are stretched.
        let k = password_kek(
            &Password::new(b"password".to_vec()),
            &[1u8; 16],
            Argon2Params::MIN,
        );
        let hex: String = k.expose().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            include_str!("../../tests/vectors/argon2id-min.hex").trim()
        );
    }
}
